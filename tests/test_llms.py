"""Chat models (LLMs): OpenAI-compatible servers over real sockets (tests/fake_chat.py), the
registry and `vibes llms`, and llm's chat models through llm's own plugin hook."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from checks import one_line_error
from fake_chat import KEY, NO_ANSWER, FakeChat, answer_for, chunk, count_words, sse

from vibes.config import save_settings, settings_path
from vibes.errors import SettingsError, UnknownLLMError, VibesError
from vibes.http import APIError
from vibes.llms import ChatModel, get_llm, registered_llms, set_default_llm
from vibes.llms.llm_models import LLMChatModel
from vibes.llms.openai import OpenAIChatModel

PLUGIN = Path(__file__).parent / "plugin_src" / "llm_chat_test_plugin.py"

PROMPT = """Answer from the sources, citing them as [N].

[1] Cats purr when they are content.
[2] Dogs bark at strangers.
[3] The purr of a cat
    is a low rumble.

Question: why do cats purr?"""
MESSAGES = [
    {"role": "system", "content": "You answer from the sources given."},
    {"role": "user", "content": PROMPT},
]
ANSWER = "Answer from [1][3]."
PIECES = ["Answ", "er f", "rom ", "[1][", "3]."]


@pytest.fixture
def model(chat, monkeypatch) -> OpenAIChatModel:
    monkeypatch.setenv("FAKE_CHAT_KEY", KEY)
    return connect(chat)


def connect(chat: FakeChat, **options) -> OpenAIChatModel:
    options.setdefault("backoff", 0.001)
    options.setdefault("timeout", 5)
    return OpenAIChatModel(
        "fake", "fake-chat", url=chat.url, key_name=None, key_env="FAKE_CHAT_KEY", **options
    )


# -- the fake server's rule, which `vibes ask`'s tests build on ------------------------


def test_the_fake_server_cites_the_sources_that_share_a_word_with_the_question():
    assert answer_for(MESSAGES) == ANSWER  # [3]'s text goes on past its first line
    assert answer_for([{"role": "user", "content": "[1] Cats purr.\nQuestion: dogs?"}]) == (
        NO_ANSWER
    )
    # Only the last user message counts; words are whole and at least 4 letters.
    earlier = {"role": "user", "content": "[1] dogs\nQuestion: dogs"}
    assert answer_for([earlier, {"role": "user", "content": "[1] dog\nQuestion: dog"}]) == (
        NO_ANSWER
    )
    assert answer_for([{"role": "user", "content": "[2] dogs\nQuestion: dogs"}]) == (
        "Answer from [2]."
    )
    assert count_words(MESSAGES) == len(MESSAGES[0]["content"].split()) + len(PROMPT.split())


# -- OpenAI-compatible servers --------------------------------------------------------


def test_stream_yields_the_pieces_in_order_and_records_usage(chat, model):
    pieces = list(model.stream(MESSAGES))
    assert pieces == PIECES
    assert model.last_usage == {
        "prompt_tokens": count_words(MESSAGES),
        "completion_tokens": len(PIECES),
        "total_tokens": count_words(MESSAGES) + len(PIECES),
    }
    assert model.last_finish_reason == "stop"
    [request] = chat.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == f"Bearer {KEY}"
    assert request["headers"]["Accept"] == "text/event-stream"
    body = request["body"]
    assert body["model"] == "fake-chat" and body["messages"] == MESSAGES
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "max_tokens" not in body and "temperature" not in body


def test_pieces_are_handed_on_as_they_arrive(chat, model):
    chat.slow = 0.25
    start = time.monotonic()
    arrivals = [time.monotonic() - start for _ in model.stream(MESSAGES)]
    assert len(arrivals) == len(PIECES)
    # The first piece came long before the last: nothing waited for the whole answer.
    assert arrivals[-1] - arrivals[0] >= 0.25 * (len(PIECES) - 1) * 0.8


def test_complete_asks_without_streaming(chat, model):
    assert model.complete(MESSAGES) == ANSWER
    assert "stream" not in chat.requests[0]["body"]
    assert model.last_usage == {
        "prompt_tokens": count_words(MESSAGES),
        "completion_tokens": len(PIECES),
        "total_tokens": count_words(MESSAGES) + len(PIECES),
    }
    assert model.complete(MESSAGES, max_tokens=2, temperature=0.2) == "Answer f"
    assert model.last_finish_reason == "length"
    body = chat.requests[1]["body"]
    assert body["max_tokens"] == 2 and body["temperature"] == 0.2
    # The default complete() of any ChatModel joins its stream.
    assert ChatModel.complete(model, MESSAGES, max_tokens=3) == "Answer from "
    assert model.last_finish_reason == "length" and chat.requests[2]["body"]["stream"]


def test_a_reasoning_model_gets_its_limit_as_max_completion_tokens(chat, model):
    # OpenAI's reasoning models refuse max_tokens (400) and name the field they take.
    chat.reasoning = {"fake-chat"}
    assert model.complete(MESSAGES, max_tokens=2) == "Answer f"
    refused, asked = (request["body"] for request in chat.requests)
    assert refused["max_tokens"] == 2 and "max_completion_tokens" not in refused
    assert asked["max_completion_tokens"] == 2 and "max_tokens" not in asked
    # Streamed too, and asked that way at once from then on.
    assert "".join(model.stream(MESSAGES, max_tokens=3)) == "Answer from "
    assert model.last_finish_reason == "length"
    assert len(chat.requests) == 3 and chat.requests[2]["body"]["max_completion_tokens"] == 3
    # A fresh handle learns it from the stream's refusal, before anything was streamed.
    fresh = connect(chat)
    assert "".join(fresh.stream(MESSAGES, max_tokens=1)) == "Answ"
    assert [("max_tokens" in r["body"]) for r in chat.requests[3:]] == [True, False]
    # Other 400s are not asked again.
    chat.reasoning = set()
    chat.context_length = 10
    with pytest.raises(APIError, match="maximum context length") as error:
        connect(chat).complete(MESSAGES, max_tokens=2)
    assert error.value.status == 400 and len(chat.requests) == 6


def test_openai_itself_is_asked_with_max_completion_tokens(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    openai = OpenAIChatModel("gpt-4.1-mini")
    payload = openai._payload(MESSAGES, 100, None)
    assert payload["max_completion_tokens"] == 100 and "max_tokens" not in payload
    # A compatible server elsewhere (Ollama, llama.cpp, vLLM) gets max_tokens.
    local = OpenAIChatModel("llama", url="http://localhost:11434/v1", needs_key=False)
    assert local._payload(MESSAGES, 100, None)["max_tokens"] == 100


def test_429_is_retried_after_the_time_retry_after_asks(chat, model):
    chat.fail(429, b'{"error": {"message": "Rate limit reached"}}', Retry_After="0.5")
    start = time.monotonic()
    assert "".join(model.stream(MESSAGES)) == ANSWER
    assert time.monotonic() - start >= 0.5  # the tiny backoff alone would not wait
    assert len(chat.requests) == 2
    chat.fail(429, Retry_After="0.5")
    start = time.monotonic()
    assert model.complete(MESSAGES) == ANSWER
    assert time.monotonic() - start >= 0.5 and len(chat.requests) == 4


def test_5xx_and_dropped_connections_are_retried_then_reported(chat, model):
    for status in (500, 502, 503):
        chat.fail(status)
    chat.drop()
    assert "".join(model.stream(MESSAGES)) == ANSWER
    assert len(chat.requests) == 5
    few = connect(chat, max_retries=2)
    for status in (500, 503, 502):
        chat.fail(status, b'{"error": {"message": "The server had an error"}}')
    with pytest.raises(APIError) as caught:
        list(few.stream(MESSAGES))
    message = str(caught.value)
    assert "kept failing for LLM fake (502) after 2 retries: The server had an error" in message
    assert caught.value.status == 502 and "\n" not in message


def test_refusals_are_one_line_errors_that_never_show_the_key(chat, model, monkeypatch):
    # The server echoes the key in its message: it is redacted.
    chat.fail(400, json.dumps({"error": {"message": f"Bad request for {KEY}"}}).encode())
    with pytest.raises(APIError) as caught:
        model.complete(MESSAGES)
    assert "rejected the request for LLM fake (400): Bad request for [key]" in str(caught.value)
    assert KEY not in str(caught.value)

    chat.context_length = 10
    with pytest.raises(APIError) as caught:
        list(model.stream(MESSAGES))
    assert "(400): This model's maximum context length is 10 tokens" in str(caught.value)
    chat.context_length = None

    with pytest.raises(APIError) as caught:
        list(
            OpenAIChatModel("other", "gpt-nope", url=chat.url, key_env="FAKE_CHAT_KEY").stream(
                MESSAGES
            )
        )
    assert "has no model 'gpt-nope' or no chat completions endpoint (404): The model " in str(
        caught.value
    )

    wrong = "sk-wrong-secret-789"
    monkeypatch.setenv("FAKE_CHAT_KEY", wrong)
    with pytest.raises(APIError) as caught:
        list(model.stream(MESSAGES))
    message = str(caught.value)
    assert "refused the API key for LLM fake (401); check $FAKE_CHAT_KEY" in message
    assert wrong not in message and caught.value.status == 401
    # Refusals are not retried.
    assert len(chat.requests) == 4 and "\n" not in message


def test_a_missing_key_is_reported_before_any_request(chat, monkeypatch):
    monkeypatch.delenv("FAKE_CHAT_KEY", raising=False)
    with pytest.raises(VibesError, match=r"LLM fake needs an API key: set \$FAKE_CHAT_KEY"):
        list(connect(chat).stream(MESSAGES))
    assert chat.requests == []


def test_a_stream_cut_part_way_is_an_error_not_a_shorter_answer(chat, model):
    chat.cut = 2
    received = []
    with pytest.raises(APIError) as caught:
        for piece in model.stream(MESSAGES):
            received.append(piece)
    assert received == PIECES[:2]
    assert "cut off the answer for LLM fake" in str(caught.value)
    assert "incomplete" in str(caught.value) and "\n" not in str(caught.value)
    assert len(chat.requests) == 1  # never retried: the caller already has two pieces


def test_a_stream_that_ends_without_saying_it_is_done_is_cut_off(chat, model):
    chat.fail(200, sse(chunk("Half an ans")), Content_Type="text/event-stream")
    with pytest.raises(APIError, match="the stream ended before the server said it was done"):
        list(model.stream(MESSAGES))
    # A finish_reason is enough, even without [DONE] (some servers leave it out).
    chat.fail(200, sse(chunk("Whole"), chunk(None, "stop")), Content_Type="text/event-stream")
    assert list(model.stream(MESSAGES)) == ["Whole"]


def test_an_error_inside_the_stream_is_reported(chat, model):
    events = sse(chunk("Par"), {"error": {"message": f"overloaded\nfor {KEY}"}})
    chat.fail(200, events, Content_Type="text/event-stream")
    with pytest.raises(APIError) as caught:
        list(model.stream(MESSAGES))
    assert str(caught.value) == (
        f"{chat.url} failed part way through the answer of LLM fake: overloaded"
    )


def test_a_server_that_ignores_stream_still_answers(chat, model):
    answer = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"content": "All at once"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }
    chat.fail(200, json.dumps(answer).encode())
    assert list(model.stream(MESSAGES)) == ["All at once"]
    assert model.last_usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_malformed_answers_are_retried_then_reported(chat, model):
    chat.fail(200, b"not json")
    assert model.complete(MESSAGES) == ANSWER
    few = connect(chat, max_retries=1)
    chat.fail(200, b'{"choices": []}')
    chat.fail(200, b'{"choices": []}')
    with pytest.raises(APIError, match="gave an invalid answer for LLM fake: no choices"):
        few.complete(MESSAGES)
    chat.fail(200, b"data: {not json\n\n", Content_Type="text/event-stream")
    with pytest.raises(APIError, match="an event that is not JSON"):
        list(model.stream(MESSAGES))


def test_a_slow_stream_completes_and_a_stalled_one_is_cut_off(chat, model):
    chat.slow = 0.3  # each wait is shorter than the time-out: the answer completes
    assert "".join(connect(chat, timeout=1).stream(MESSAGES)) == ANSWER
    chat.slow = 1.5
    with pytest.raises(APIError, match="cut off the answer for LLM fake .*timed out"):
        list(connect(chat, timeout=0.5).stream(MESSAGES))


def test_messages_of_the_wrong_shape_are_refused(chat, model):
    with pytest.raises(VibesError, match="Message 0 must be"):
        list(model.stream([{"role": "robot", "content": "hi"}]))
    with pytest.raises(VibesError, match="non-empty list of messages"):
        model.complete([])
    assert chat.requests == []


def test_count_tokens_estimates_four_characters_a_token(model):
    assert model.count_tokens("") == 0
    assert model.count_tokens("abcd") == 1
    assert model.count_tokens("abcde") == 2


# -- built-in models, the registry and `vibes llms` -----------------------------------


def test_openai_models_are_built_in_and_use_the_saved_key(chat, invoke, monkeypatch):
    model = get_llm("4o-mini")
    assert isinstance(model, OpenAIChatModel)
    assert (model.model_id, model.context_length) == ("gpt-4o-mini", 128_000)
    assert get_llm("gpt-4.1").context_length == 1_047_576
    assert model.url == "https://api.openai.com/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", chat.url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    chat.models = {"gpt-4o-mini"}
    with pytest.raises(VibesError, match="'vibes keys set openai'"):
        model.complete(MESSAGES)
    assert invoke(["keys", "set", "openai", "--value", KEY]).exit_code == 0
    model.backoff = 0.001
    assert "".join(model.stream(MESSAGES)) == ANSWER
    assert chat.requests[-1]["body"]["model"] == "gpt-4o-mini"


def rows(result) -> dict[str, dict]:
    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in result.stdout.splitlines()]
    return {row["id"]: row for row in found}


def test_register_list_default_and_unregister(invoke, chat, monkeypatch):
    monkeypatch.setenv("LOCAL_KEY", KEY)
    result = invoke(
        ["llms", "register", "--api", chat.url + "/", "--api-model", "fake-chat"]
        + ["--alias", "local", "--api-key-env", "LOCAL_KEY", "--context-length", "8192"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "alias": "local",
        "url": chat.url,
        "api_model": "fake-chat",
        "key_env": "LOCAL_KEY",
        "context_length": 8192,
    }
    listed = rows(invoke(["llms"]))
    assert listed["local"] == {
        "id": "local",
        "aliases": [],
        "kind": "api",
        "context_length": 8192,
        "default": False,
    }
    assert listed["gpt-4o-mini"]["kind"] == "openai"
    assert listed["gpt-4o-mini"]["aliases"] == ["4o-mini"]
    assert not any(row["default"] for row in listed.values())

    model = get_llm("local")
    model.backoff = 0.001
    assert model.complete(MESSAGES) == ANSWER
    assert model.context_length == 8192 and chat.requests[-1]["auth"] == f"Bearer {KEY}"

    one_line_error(invoke(["llms", "default"]), "No default LLM", "vibes llms default NAME")
    assert invoke(["llms", "default", "local"]).exit_code == 0
    assert invoke(["llms", "default"]).stdout == "local\n"
    assert [i for i, row in rows(invoke(["llms", "list"])).items() if row["default"]] == ["local"]
    assert get_llm().model_id == "local"
    # $VIBES_LLM wins over the saved default, for one shell.
    monkeypatch.setenv("VIBES_LLM", "4o-mini")
    assert get_llm().model_id == "gpt-4o-mini"
    assert invoke(["llms", "default"]).stdout == "4o-mini\n"
    assert rows(invoke(["llms"]))["gpt-4o-mini"]["default"] is True
    monkeypatch.delenv("VIBES_LLM")

    # Registering the alias again replaces the registration.
    again = invoke(["llms", "register", "--api", chat.url, "--alias", "local"])
    assert again.exit_code == 0
    assert get_llm("local").api_model == "local"
    assert get_llm("local").context_length is None
    assert sum(1 for row in rows(invoke(["llms"])).values() if row["kind"] == "api") == 1

    result = invoke(["llms", "unregister", "local"])
    assert result.exit_code == 0 and "was the default LLM" in result.stderr
    assert "local" not in rows(invoke(["llms"]))
    with pytest.raises(UnknownLLMError, match="No LLM chosen: .*'vibes llms default NAME'"):
        get_llm()
    one_line_error(invoke(["llms", "unregister", "local"]), "No registered LLM called 'local'")


def test_default_is_saved_as_the_model_id(invoke):
    assert invoke(["llms", "default", "4.1-mini"]).exit_code == 0
    assert json.loads(settings_path().read_text())["default_llm"] == "gpt-4.1-mini"
    assert set_default_llm(None) is None
    assert "default_llm" not in json.loads(settings_path().read_text())


@pytest.mark.parametrize(
    ("args", "fragments", "code"),
    [
        (["register", "--api", "http://x/v1", "--alias", "4o"], ["built-in LLM gpt-4o"], 1),
        (["register", "--api", "http://x/v1", "--alias", "llm:x"], ["kept for llm's models"], 1),
        (["register", "--api", "ftp://x", "--alias", "a"], ["--api must be an http(s) URL"], 1),
        (["register", "--api", "http://[::1", "--alias", "a"], ["must be an http(s) URL"], 1),
        (["register", "--api", "http://x/v1", "--alias", " a"], ["surrounding spaces"], 1),
        (["register", "--alias", "a"], ["Missing option '--api'"], 2),
        (["register", "--api", "http://x/v1", "--alias", "a", "--context-length", "0"], [], 2),
        (["default", "nope"], ["Unknown LLM: nope", "vibes llms"], 1),
        (["default", "4o", "--remove"], ["not both"], 2),
        (["unregister", "nope"], ["No registered LLM called 'nope'"], 1),
        (["lsit"], ["No such command 'lsit'"], 2),
    ],
)
def test_cli_errors_are_one_line(invoke, args, fragments, code):
    result = invoke(["llms", *args])
    if code == 1:
        one_line_error(result, *fragments, code=code)
    else:  # a usage error: click's usage line, then the error
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert all(fragment in result.stderr for fragment in fragments), result.stderr
    assert not settings_path().exists() or "llms" not in json.loads(settings_path().read_text())


def test_hand_edited_registrations_are_checked(run, isolated_home):
    save_settings(
        {
            "llms": [
                {"alias": "good", "url": "http://localhost:1/v1"},
                {"alias": "bad", "url": "localhost:11434"},
                {"alias": "good", "url": "http://localhost:2/v1"},
                {"alias": "odd", "url": "http://localhost:1/v1", "dimensions": 3},
                "text",
            ]
        }
    )
    with pytest.warns(UserWarning) as caught:
        found = {entry.model.model_id for entry in registered_llms(include_llm=False)}
    assert "good" in found and "bad" not in found and "odd" not in found
    assert len(caught) == 4
    assert get_llm("good").url == "http://localhost:1/v1"  # the first of the two
    with pytest.raises(SettingsError, match=r"Registered LLM 'bad' cannot be used: .*\"url\" must"):
        get_llm("bad")
    with pytest.raises(SettingsError, match='"dimensions", which an LLM registration'):
        get_llm("odd")
    result = run(["llms", "list"], env={"VIBES_HOME": str(isolated_home)})
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 4 and all(w.startswith("Warning: Settings file") for w in warnings)
    assert '"id": "good"' in result.stdout

    save_settings({"default_llm": 5})
    with pytest.raises(SettingsError, match='"default_llm" must be'):
        get_llm()
    save_settings({"llms": {"alias": "x"}})
    with pytest.raises(SettingsError, match='"llms" must be a list'):
        get_llm("x")
    assert get_llm("4o").model_id == "gpt-4o"  # the built-in models still work


def test_start_up_imports_neither_llm_nor_an_http_client():
    code = (
        "import sys, vibes.cli, vibes.llms\n"
        "print(sorted(m for m in ('llm', 'urllib.request', 'http.client') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- llm's chat models ----------------------------------------------------------------


@pytest.fixture
def llm_plugin():
    """The chat test plugin registered with llm's plugin manager for this process."""
    from llm.plugins import load_plugins, pm

    load_plugins()
    spec = importlib.util.spec_from_file_location("llm_chat_test_plugin", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pm.register(module, name="llm_chat_test_plugin")
    yield module
    pm.unregister(name="llm_chat_test_plugin")


CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "first answer"},
    {"role": "user", "content": "second question"},
]


def test_llm_models_stream_through_llm(llm_plugin):
    model = get_llm("llm:echo")
    assert isinstance(model, LLMChatModel) and model.model_id == "llm:chat-echo"
    assert get_llm("chat-echo").model_id == "llm:chat-echo"  # a name vibes lacks goes to llm
    pieces = list(model.stream(MESSAGES[:1] + [{"role": "user", "content": "hello there"}]))
    assert pieces == [
        "system=You",
        " answer",
        " from",
        " the",
        " sources",
        " given.",
        " |",
        " user=hello",
        " there",
    ]
    assert model.last_usage == {"prompt_tokens": 8, "completion_tokens": 9, "total_tokens": 17}


def test_llm_models_get_the_whole_conversation_and_options(llm_plugin):
    model = get_llm("llm:chat-echo")
    answer = model.complete(CONVERSATION, temperature=0.5)
    assert answer == (
        "system=Be brief. | user=first question | assistant=first answer | "
        "user=second question (t=0.5)"
    )
    assert model.complete(CONVERSATION, max_tokens=3) == "system=Be brief. |"
    # A plugin that predates llm's messages still gets the instructions and the question;
    # options it does not take are left out rather than refused.
    legacy = get_llm("llm:chat-legacy")
    assert legacy.complete(CONVERSATION, max_tokens=5) == "system=Be brief. prompt=second question"
    assert legacy.last_usage is None
    with pytest.raises(VibesError, match="must be the user's"):
        model.complete(CONVERSATION[:3])


def test_llm_model_failures_are_one_line(llm_plugin, monkeypatch):
    monkeypatch.delenv("CHAT_TEST_KEY", raising=False)
    keyed = get_llm("llm:chat-keyed")
    with pytest.raises(VibesError, match="LLM llm:chat-keyed needs an API key: .*CHAT_TEST_KEY"):
        keyed.complete(MESSAGES)
    assert isinstance(keyed, LLMChatModel)
    keyed.key_override = "good"
    assert keyed.complete(MESSAGES) == "keyed answer"
    keyed.key_override = "sk-very-secret-321"
    with pytest.raises(VibesError) as caught:
        keyed.complete(MESSAGES)
    assert str(caught.value) == "LLM llm:chat-keyed failed: ValueError: the key [key] was refused"
    received = []
    with pytest.raises(VibesError) as caught:
        for piece in get_llm("llm:chat-broken").stream(MESSAGES):
            received.append(piece)
    assert received == ["partial"]
    assert str(caught.value) == "LLM llm:chat-broken failed: RuntimeError: the plugin broke"
    with pytest.raises(UnknownLLMError, match="Unknown LLM: llm:nope"):
        get_llm("llm:nope")


def test_llm_models_are_listed_and_can_be_the_default(llm_plugin, invoke):
    listed = {entry.model.model_id: entry for entry in registered_llms()}
    assert listed["llm:chat-echo"].kind == "llm"
    assert listed["llm:chat-echo"].aliases == ("llm:echo",)
    row = rows(invoke(["llms"]))["llm:chat-echo"]
    assert row == {
        "id": "llm:chat-echo",
        "aliases": ["llm:echo"],
        "kind": "llm",
        "context_length": None,
        "default": False,
    }
    assert invoke(["llms", "default", "llm:echo"]).exit_code == 0
    assert invoke(["llms", "default"]).stdout == "llm:chat-echo\n"
    assert get_llm().complete([{"role": "user", "content": "hi"}]) == "user=hi"


def test_an_installed_llm_plugin_gives_vibes_its_chat_models(run, tmp_path):
    """The plugin installed as a distribution with an entry point, as pip would: llm finds
    it, and vibes lists and uses its models, in a fresh process."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(PLUGIN, site / PLUGIN.name)
    info = site / "llm_chat_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: llm-chat-test-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[llm]\nllm_chat_test_plugin = llm_chat_test_plugin\n")
    env = {"PYTHONPATH": str(site)}
    listed = run(["llms", "list"], env=env)
    assert listed.returncode == 0, listed.stderr
    ids = [json.loads(line)["id"] for line in listed.stdout.splitlines()]
    assert "llm:chat-echo" in ids and "llm:chat-legacy" in ids
    assert run(["llms", "default", "llm:echo"], env=env).returncode == 0
    code = (
        "from vibes.llms import get_llm\n"
        "m = get_llm()\n"
        "print(m.model_id, list(m.stream([{'role': 'user', 'content': 'hi there'}])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "llm:chat-echo ['user=hi', ' there']"
    without = run(["llms", "list"])  # not installed: not listed
    assert "llm:chat-echo" not in without.stdout
