"""Tiny, randomly initialised models of the real architectures, saved the way users get them:
a BERT and a T5 encoder saved as sentence-transformers directories, a CLIP saved with its
processor, and a BERT cross-encoder (a re-ranker) saved as a transformers directory.
Everything is built here, offline: no file comes from a hub."""

from __future__ import annotations

import json
from pathlib import Path


def _byte_level_alphabet() -> list[str]:
    # The byte-to-character table of byte-level BPE (GPT-2 and CLIP use it).
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\xa1"), ord("\xac") + 1),
        *range(ord("\xae"), ord("\xff") + 1),
    ]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def _st_modules() -> tuple[type, type, type, type]:
    """sentence-transformers' Transformer, Pooling, Dense and Normalize, wherever they live."""
    try:
        from sentence_transformers.sentence_transformer.modules import (
            Dense,
            Normalize,
            Pooling,
            Transformer,
        )
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers.models import Dense, Normalize, Pooling, Transformer
    return Transformer, Pooling, Dense, Normalize


def make_sentence_transformer(directory: Path) -> Path:
    """A 32-dimension BERT with mean pooling, saved by sentence-transformers."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    bert = directory / "bert"
    bert.mkdir(parents=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":", "query", "passage"]
    words += list("abcdefghijklmnopqrstuvwxyz0123456789") + ["the", "dog", "cat", "beach"]
    (bert / "vocab.txt").write_text("\n".join(words))
    BertTokenizerFast(str(bert / "vocab.txt")).save_pretrained(bert)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(bert)
    return _save_mean_pooled(bert, directory / "tiny-st")


def make_roberta_sentence_transformer(directory: Path) -> Path:
    """A 32-dimension RoBERTa with byte-level BPE (no merges: a token a byte), saved by
    sentence-transformers: a tokenizer to which spaces at the ends matter, and a model
    without token type ids."""
    import torch
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    torch.manual_seed(0)
    roberta = directory / "roberta"
    roberta.mkdir(parents=True)
    words = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *_byte_level_alphabet()]
    (roberta / "vocab.json").write_text(json.dumps({w: i for i, w in enumerate(words)}))
    (roberta / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = RobertaTokenizerFast(str(roberta / "vocab.json"), str(roberta / "merges.txt"))
    tokenizer.save_pretrained(roberta)
    config = RobertaConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=80,
        pad_token_id=1,
        type_vocab_size=1,
    )
    RobertaModel(config).save_pretrained(roberta)
    return _save_mean_pooled(roberta, directory / "tiny-roberta")


def _save_mean_pooled(transformer: Path, target: Path) -> Path:
    """The 32-dimension transformer saved at ``transformer`` as a sentence-transformers
    model at ``target``: mean pooling, texts cut at 64 tokens."""
    from sentence_transformers import SentenceTransformer

    Transformer, Pooling, _, _ = _st_modules()
    model = SentenceTransformer(
        modules=[Transformer(str(transformer), max_seq_length=64), Pooling(32)]
    )
    model.save(str(target))
    return target


def make_cross_encoder(directory: Path) -> Path:
    """A BERT with a one-label classification head, as cross-encoders such as
    ms-marco-MiniLM-L6-v2 are published: a transformers directory that
    sentence-transformers' CrossEncoder loads. Weights are drawn wider than BERT's
    default, so that different pairs get clearly different scores."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(0)
    target = directory / "tiny-cross-encoder"
    target.mkdir(parents=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","]
    words += list("abcdefghijklmnopqrstuvwxyz0123456789")
    words += ["the", "dog", "cat", "beach", "runs", "sand", "sleeps", "sofa", "on", "a"]
    (target / "vocab.txt").write_text("\n".join(words))
    BertTokenizerFast(str(target / "vocab.txt")).save_pretrained(target)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
        initializer_range=0.5,
    )
    BertForSequenceClassification(config).save_pretrained(target)
    return target


#: Whole words of the tiny T5's vocabulary (a SentencePiece "▁" marks a word's start); any
#: other lowercase word is spelt out from single letters, the way SentencePiece falls back.
T5_WORDS = ("the", "dog", "cat", "beach", "runs", "on", "sand", "query", "passage", "a")
#: What the tiny T5 reads (its end-of-sequence token included), like gtr-t5's 512.
T5_MAX_SEQ_LENGTH = 24
#: Its vectors: the Dense layer maps the 32-dimension mean-pooled tokens to 24.
T5_DIMENSIONS = 24


def make_t5_sentence_transformer(directory: Path) -> Path:
    """A T5 encoder built like gtr-t5 and sentence-t5: a SentencePiece (Unigram) tokenizer,
    mean pooling, a Dense layer without bias or activation, then normalisation."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    Transformer, Pooling, Dense, Normalize = _st_modules()
    torch.manual_seed(0)
    # A Unigram vocabulary with scores, as a SentencePiece model holds it: <pad>, </s> and
    # <unk> first (T5's ids 0, 1, 2), then the word-start marker, whole words, punctuation,
    # and single characters for everything else.
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [("\u2581" + word, -3.0) for word in T5_WORDS]
    vocab += [(mark, -4.0) for mark in (":", ".", ",", "!", "?", "'", "-")]
    vocab += [(c, -6.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=4)
    encoder = directory / "t5-encoder"
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        feed_forward_proj="relu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    T5EncoderModel(config).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    modules = [
        Transformer(str(encoder), max_seq_length=T5_MAX_SEQ_LENGTH),
        Pooling(32, pooling_mode="mean"),
        Dense(32, T5_DIMENSIONS, bias=False, activation_function=torch.nn.Identity()),
        Normalize(),
    ]
    model = SentenceTransformer(modules=modules)
    target = directory / "tiny-t5"
    model.save(str(target))
    return target


def make_clip(directory: Path) -> Path:
    """A 16-dimension CLIP (text and vision towers) saved with its processor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    torch.manual_seed(0)
    alphabet = _byte_level_alphabet()
    vocab = {c: i for i, c in enumerate(alphabet)}
    for c in alphabet:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    files = directory / "clip-tokenizer"
    files.mkdir(parents=True)
    (files / "vocab.json").write_text(json.dumps(vocab))
    (files / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(files / "vocab.json"), str(files / "merges.txt"))
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "max_position_embeddings": 77,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=tokenizer,
    )
    target = directory / "tiny-clip"
    CLIPModel(config).save_pretrained(target)
    processor.save_pretrained(target)
    return target
