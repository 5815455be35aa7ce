"""A plugin for llm itself (entry point group "llm"), to prove vibes uses llm's models."""

import llm
from vibes_test_plugin import hash_vector


class LLMHash(llm.EmbeddingModel):
    model_id = "llm-hash"

    def embed_batch(self, items):
        for item in items:
            yield hash_vector(item)


@llm.hookimpl
def register_embedding_models(register):
    register(LLMHash())
