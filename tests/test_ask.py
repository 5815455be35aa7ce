"""`vibes ask` and `Collection.ask`: retrieval, packing within a budget, citations, streaming,
history, errors, and vibes as an llm plugin; against a chat server on a real socket
(tests/fake_chat.py), which answers by citing the sources that share a word with the
question."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from checks import one_line_error
from fake_chat import KEY, NO_ANSWER, parse_prompt

import vibes
from vibes.ask import AskWarning, history
from vibes.ask.pack import CUT_MARK, DEFAULT_BUDGET, MIN_CUT_TOKENS, pack, render
from vibes.ask.retrieve import Passage, Piece, retrieve

# One line a chunk ("lines" chunker): guide.md#N is line N.
GUIDE = "\n".join(
    [
        "Install the package with pip before anything else.",
        "Zebras graze on the open savanna grass.",
        "Configure the backup schedule in settings.",
        "Restore a backup with the restore command.",
        "Giraffes browse leaves from tall acacia trees.",
        "Uninstall by removing the package directory.",
        "Lions hunt at dawn in prides.",
    ]
)
FAQ = [
    ("faq-archives", "Backup files are stored as compressed archives."),
    ("faq-colours", "Flamingos are pink because of their diet."),
]


@pytest.fixture
def docs(db_path, test_plugin):
    """A chunked document and two items, in a collection of the hash test model."""
    collection = vibes.Database(db_path).collection("docs", model="hash")
    collection.embed_multi([("guide.md", GUIDE)], chunk="lines", store=True)
    collection.embed_multi(FAQ, store=True)
    return collection


def sent_prompt(chat, index=-1):
    """(sources by number, question) of the last user message of a request."""
    messages = chat.requests[index]["body"]["messages"]
    return parse_prompt([m for m in messages if m["role"] == "user"][-1]["content"])


def words(text):
    return len(text.split())


# -- retrieval ---------------------------------------------------------------------------


def test_hits_and_their_neighbours_become_one_passage_per_run(docs):
    found = retrieve(docs, "restore backup", mode="text", n=3)
    ids = [(p.id, [piece.id for piece in p.pieces]) for p in found.passages]
    # #4 (both words) and #3 (backup) are hits; with a neighbour on each side their
    # runs 3-5 and 2-4 overlap: one passage, in the rank of its best hit, each chunk once.
    assert ids[0] == ("guide.md#4", ["guide.md#2", "guide.md#3", "guide.md#4", "guide.md#5"])
    assert found.passages[0].hits == ["guide.md#4", "guide.md#3"]
    assert found.passages[0].lines == (2, 5)
    assert ids[1] == ("faq-archives", ["faq-archives"])
    assert len(ids) == 2


def test_runs_that_only_touch_merge_and_runs_apart_do_not(docs):
    # "install" is line 1, "uninstall"... is not the same word: use the words of lines
    # 1 and 4 (runs 1-2 and 3-5 touch) and of lines 1 and 7 (runs 1-2 and 6-7 do not).
    touching = retrieve(docs, "pip restore", mode="text", n=2)
    assert [[p.id for p in passage.pieces] for passage in touching.passages] == [
        [f"guide.md#{i}" for i in range(1, 6)]
    ]
    apart = retrieve(docs, "pip prides", mode="text", n=2)
    assert sorted([p.id for p in passage.pieces] for passage in apart.passages) == [
        ["guide.md#1", "guide.md#2"],
        ["guide.md#6", "guide.md#7"],
    ]


def test_context_zero_sends_the_hits_alone(docs):
    found = retrieve(docs, "restore backup", mode="text", n=3, context=0)
    # #3 and #4 still touch: one passage of the two hits, no neighbour.
    assert [[p.id for p in passage.pieces] for passage in found.passages][0] == [
        "guide.md#3",
        "guide.md#4",
    ]


def test_hybrid_is_the_default_and_falls_back_to_vectors_with_a_warning(docs, chat, fake_llm):
    answer = docs.ask("restore backup", n=3)
    assert answer.sources and not any("vector only" in w for w in answer.warnings)
    docs.drop_fulltext()
    with pytest.warns(UserWarning, match="searching by vector only"):
        answer = docs.ask("restore backup", n=3, min_score=-1)
    assert any("searching by vector only" in w for w in answer.warnings)
    assert answer.answer is not None


def test_hits_without_stored_text_are_left_out_with_a_warning(docs):
    docs.embed_multi([("secret", "restore the vault from its backup")])  # no --store
    with pytest.warns(AskWarning, match="1 of the hits has no stored text to send"):
        found = retrieve(docs, "restore backup", mode="vector", min_score=-1, n=10)
    assert "secret" not in [p.id for p in found.passages] and found.passages


# -- packing -----------------------------------------------------------------------------


def passage(name, texts, hit_at=None):
    """A passage of chunks name#1..., all hits unless ``hit_at`` names the hit's position."""
    pieces = [
        Piece(f"{name}#{i + 1}", text, (i + 1, i + 1), i, hit_at is None or i == hit_at, 1.0)
        for i, text in enumerate(texts)
    ]
    return Passage(f"{name}#1", 1.0 - len(name) / 100, name, None, pieces)


def sentence(word, count):
    return " ".join(f"{word}{i}" for i in range(count))


@pytest.mark.parametrize("budget", [60, 84, 90, 111])
def test_the_budget_is_never_exceeded_and_the_last_passage_is_cut_not_dropped(budget):
    passages = [passage("a", [sentence("alpha", 30)]), passage("b", [sentence("beta", 30)])]
    passages.append(passage("c", [sentence("gamma", 80)]))
    packed = pack(passages, budget, words)
    assert words(packed.text) <= budget
    assert packed.tokens == words(packed.text)
    last = packed.sources[-1]
    assert last.truncated and last.text.endswith(CUT_MARK)
    original = [p for p in passages if p.id == last.id][0].text
    assert original.startswith(last.text[: -len(CUT_MARK)])
    # The cut is as long as fits: one more word would overflow.
    kept = last.text[: -len(CUT_MARK)].split()
    longer = " ".join(original.split()[: len(kept) + 1]) + CUT_MARK
    bigger = render([*packed.sources[:-1], type(last)(**{**last.__dict__, "text": longer})])
    assert words(bigger) > budget
    assert [s.n for s in packed.sources] == list(range(1, len(packed.sources) + 1))


def test_a_passage_that_fits_whole_is_sent_whole():
    passages = [passage("a", [sentence("alpha", 10)]), passage("b", [sentence("beta", 10)])]
    packed = pack(passages, 1000, words)
    assert [s.text for s in packed.sources] == [p.text for p in passages]
    assert not any(s.truncated for s in packed.sources)
    assert packed.left_out == 0


def test_neighbours_go_before_the_hit_is_cut():
    first = passage("a", [sentence("alpha", 20)])
    # The hit is the middle chunk: its neighbours are dropped to make room, uncut.
    second = passage("b", [sentence("before", 30), sentence("hit", 10), sentence("after", 30)], 1)
    packed = pack([first, second], 40, words)
    assert packed.sources[1].text == sentence("hit", 10)
    assert packed.sources[1].chunks == ["b#2"]
    assert packed.sources[1].lines == (2, 2)
    assert not packed.sources[1].truncated


def test_neighbours_never_crowd_out_a_later_hit():
    first = passage("a", [sentence("before", 30), sentence("hit", 10), sentence("after", 30)], 1)
    second = passage("b", [sentence("beta", 10)])
    third = passage("c", [sentence("near", 5), sentence("gamma", 10)], 1)
    packed = pack([first, second, third], 60, words)
    # Every hit is in; only the neighbours that fit after them come back (the third's).
    assert [s.chunks for s in packed.sources] == [["a#2"], ["b#1"], ["c#1", "c#2"]]
    assert words(packed.text) <= 60
    roomy = pack([first, second, third], 200, words)
    assert [s.chunks for s in roomy.sources][0] == ["a#1", "a#2", "a#3"]
    assert roomy.sources[0].text == first.text


def test_a_cut_source_names_only_the_chunks_it_reaches():
    long = passage("a", [sentence("one", 20), sentence("two", 20), sentence("three", 20)])
    packed = pack([long], 35, words)
    (source,) = packed.sources
    assert source.truncated
    assert source.chunks == ["a#1", "a#2"]
    assert source.lines == (1, 2)


def test_too_little_room_leaves_the_passage_out_rather_than_a_stub():
    passages = [passage("a", [sentence("alpha", 30)]), passage("b", [sentence("beta", 30)])]
    header = words("[2] b#1 (b, line 1)")
    packed = pack(passages, 30 + 3 + header + MIN_CUT_TOKENS - 1, words)
    assert [s.id for s in packed.sources] == ["a#1"]
    assert packed.left_out == 1
    with pytest.raises(vibes.VibesError, match="holds no passage"):
        pack(passages, 3, words)


def test_the_default_budget_is_fitted_to_the_models_context(docs, chat, fake_llm):
    from vibes.llms import register_llm

    long_text = " ".join(f"restore{i} backup" for i in range(400))  # ~2,400 tokens at 4 chars
    docs.embed_multi([("long", long_text)], store=True)
    register_llm(
        "small",
        api_url=chat.url,
        api_model="fake-chat",
        api_key_env="FAKE_CHAT_KEY",
        context_length=600,
    )
    answer = docs.ask("restore backup", llm="small", mode="text")
    model = vibes.llms.get_llm("small")
    # The sources get what the context leaves after the answer's room (a quarter of it),
    # the rest of the prompt (4 tokens a message more) and a margin of 32.
    rest = [{**m, "content": m["content"]} for m in answer.messages]
    block = render(answer.sources)
    rest[-1]["content"] = rest[-1]["content"].replace(block, "")
    fixed = sum(model.count_tokens(m["content"]) + 4 for m in rest)
    assert answer.budget == 600 - 150 - fixed - 32
    assert model.count_tokens(block) <= answer.budget
    assert answer.tokens == model.count_tokens(block)
    assert any(s.truncated for s in answer.sources)
    # The whole request fits the context with the answer's room left.
    assert fixed + answer.tokens + 150 <= 600
    given = docs.ask("restore backup", llm="small", mode="text", budget=100)
    assert given.budget == 100 and 90 < model.count_tokens(render(given.sources)) <= 100
    with pytest.raises(vibes.VibesError, match="leaves no room for sources"):
        docs.ask("restore backup", llm="small", mode="text", max_tokens=560)


def test_without_a_model_the_budget_is_the_documented_default(docs):
    answer = docs.ask("restore backup", mode="text", sources_only=True)
    assert answer.budget == DEFAULT_BUDGET
    assert answer.answer is None and answer.sources


# -- asking ------------------------------------------------------------------------------


def test_citations_map_to_the_sources_that_hold_the_words(docs, chat, fake_llm):
    answer = docs.ask("restore backup", mode="text", n=3)
    assert [s.id for s in answer.sources] == ["guide.md#4", "faq-archives"]
    assert answer.answer == "Answer from [1][2]."
    assert [s.id for s in answer.cited] == ["guide.md#4", "faq-archives"]
    # Only the guide passage holds "restore": a question of that word cites it alone.
    answer = docs.ask("restore", mode="text", n=3)
    assert answer.answer == "Answer from [1]."
    assert "Restore a backup" in answer.cited[0].text
    sources, question = sent_prompt(chat)
    assert question.strip() == "restore"
    assert sorted(sources) == [1]
    assert answer.usage == chat_usage(chat)
    assert answer.model == "fake"
    # Sources that share no word with the question: the model says so, citing none.
    answer = docs.ask("quokka wombat", mode="vector", min_score=-1)
    assert answer.sources and answer.answer == NO_ANSWER and answer.cited == []


def chat_usage(chat):
    """The usage the server computed for its last answer (prompt words + pieces)."""
    body = chat.requests[-1]["body"]
    prompt = sum(len(m["content"].split()) for m in body["messages"])
    pieces = -(-len(chat.answers[-1]) // chat.piece_size)
    return {"prompt_tokens": prompt, "completion_tokens": pieces, "total_tokens": prompt + pieces}


def test_the_prompt_holds_instructions_numbered_sources_and_the_question(docs, chat, fake_llm):
    docs.ask("restore backup", mode="text")
    messages = chat.requests[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "only" in messages[0]["content"] and "[1]" in messages[0]["content"]
    user = messages[1]["content"]
    assert user.startswith("Sources:\n\n[1] guide.md#4 (guide.md, lines 2-5)\n")
    assert "Zebras graze" in user and "Giraffes browse" in user  # the neighbours
    assert user.count("Restore a backup with the restore command.") == 1
    assert user.endswith("\n\nQuestion: restore backup")


def test_stream_callback_and_iterator_give_the_pieces_in_order(docs, chat, fake_llm):
    pieces = []
    answer = docs.ask("restore backup", mode="text", stream=pieces.append)
    assert len(pieces) > 3 and "".join(pieces) == answer.answer == "Answer from [1][2]."
    streaming = docs.ask("restore", mode="text", stream=True)
    assert [s.id for s in streaming.sources] == ["guide.md#4"]
    assert chat.requests[-1]["body"]["stream"] is True
    got = list(streaming)
    assert "".join(got) == "Answer from [1]."
    assert streaming.result().answer == "Answer from [1]."
    assert streaming.result().usage["completion_tokens"] == len(got)


def test_a_citation_of_no_source_is_a_warning(docs, chat, fake_llm):
    chat.reply = lambda messages: "It is [2], and [7] too."
    with pytest.warns(AskWarning, match=r"cites \[7\], but there are only 2 sources"):
        answer = docs.ask("restore backup", mode="text")
    assert answer.citations == [2, 7]
    assert [s.id for s in answer.cited] == ["faq-archives"]


def test_nothing_relevant_asks_no_model(docs, chat, fake_llm):
    answer = docs.ask("restore backup", min_score=0.99)
    assert answer.answer is None and answer.sources == []
    assert "is close enough to the question (best score" in answer.reason
    assert "< 0.99); not asking the model" in answer.reason
    assert chat.requests == []
    answer = docs.ask("nothing matches quokka", mode="text")
    assert answer.reason == "No passage of docs matches the question; not asking the model"
    assert chat.requests == []


def test_in_vector_mode_hits_below_the_threshold_are_left_out(docs, chat, fake_llm):
    hits = docs.search("restore backup", 9, mode="vector")
    threshold = sorted(hit.score for hit in hits)[len(hits) // 2]
    above = {hit.id for hit in hits if hit.score >= threshold}
    assert 0 < len(above) < len(hits)
    some = docs.ask("restore backup", mode="vector", n=9, min_score=threshold, context=0)
    assert {chunk for source in some.sources for chunk in source.chunks} == above
    # In hybrid mode the threshold only gates the question: words count too.
    hybrid = docs.ask("restore backup", n=9, min_score=threshold, context=0)
    assert len({chunk for source in hybrid.sources for chunk in source.chunks}) == len(hits)


@pytest.mark.slow
def test_minilm_threshold_refuses_an_unrelated_question(tmp_path, minilm, chat, fake_llm):
    collection = vibes.Database(tmp_path / "real.db").collection("manual", model=minilm)
    collection.embed_multi(
        [
            ("install", "Install vibes with pip, then run vibes embed-multi to add files."),
            ("backup", "Back up the database by copying the embeddings.db file elsewhere."),
            ("search", "vibes similar finds the items closest in meaning to a query."),
            ("chunks", "Long documents are cut into chunks, each embedded on its own."),
        ],
        store=True,
    )
    refused = collection.ask("What is the capital of France?")
    assert refused.answer is None and chat.requests == []
    assert refused.best_score < vibes.ask.DEFAULT_MIN_SCORE
    answered = collection.ask("How do I back up my database?")
    assert answered.answer is not None and len(chat.requests) == 1
    assert answered.best_score >= vibes.ask.DEFAULT_MIN_SCORE
    assert answered.sources[0].id == "backup"


def test_system_and_template_replace_the_instructions(docs, chat, fake_llm, tmp_path):
    docs.ask("restore", mode="text", system="Be brief.")
    assert chat.requests[-1]["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    template = tmp_path / "template.txt"
    template.write_text("Read these:\n{sources}\nQuestion: {question}\nThanks {sources_not}")
    answer = docs.ask("restore", mode="text", template=str(template))
    user = chat.requests[-1]["body"]["messages"][-1]["content"]
    assert user.startswith("Read these:\n[1] guide.md#4")
    assert user.endswith("Question: restore\nThanks {sources_not}")
    assert answer.answer == "Answer from [1]."
    docs.ask("{sources}", mode="vector", template="Q: {question}\nS: {sources}", min_score=-1)
    user = chat.requests[-1]["body"]["messages"][-1]["content"]
    assert user.startswith("Q: {sources}\nS: [1]")  # the question is not filled in again
    with pytest.raises(vibes.VibesError, match="must hold {question}"):
        docs.ask("restore", mode="text", template="Only {sources}")
    with pytest.raises(vibes.VibesError, match="neither a file nor a text"):
        docs.ask("restore", mode="text", template=str(tmp_path / "missing.txt"))


# -- the command line --------------------------------------------------------------------


def test_cli_prints_the_answer_then_the_sources(invoke, docs, chat, fake_llm, db_path):
    result = invoke(["ask", "docs", "restore backup", "--mode", "text", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Answer from [1][2].\n\nSources:\n[1] guide.md#4 (guide.md, lines 2-5)\n[2] faq-archives\n"
    )
    result = invoke(
        ["ask", "docs", "restore backup", "--mode", "text", "--no-stream", "-d", db_path]
    )
    assert result.stdout.startswith("Answer from [1][2].\n\nSources:\n[1] guide.md#4")
    assert chat.requests[-1]["body"].get("stream") in (None, False)


def test_cli_json_shape(invoke, docs, chat, fake_llm, db_path):
    result = invoke(["ask", "docs", "restore", "--mode", "text", "--json", "-d", db_path])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"answer", "sources", "model", "usage"} <= set(data)
    assert data["answer"] == "Answer from [1]."
    assert data["model"] == "fake"
    assert set(data["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    first = data["sources"][0]
    assert {"n", "id", "document", "lines", "score", "text"} <= set(first)
    assert (first["n"], first["id"], first["document"], first["lines"]) == (
        1,
        "guide.md#4",
        "guide.md",
        [3, 5],
    )
    assert first["cited"] is True
    assert "Giraffes browse" in first["text"]  # a neighbour
    assert first["chunks"] == ["guide.md#3", "guide.md#4", "guide.md#5"]
    data = json.loads(
        invoke(
            ["ask", "docs", "restore archives", "--mode", "text", "--json", "-d", db_path]
        ).stdout
    )
    assert [(s["n"], s["id"], s["cited"]) for s in data["sources"]] == [
        (1, "guide.md#4", True),
        (2, "faq-archives", True),
    ]
    chat.reply = lambda messages: "From [2]."
    data = json.loads(
        invoke(
            ["ask", "docs", "restore archives", "--mode", "text", "--json", "-d", db_path]
        ).stdout
    )
    assert [s["cited"] for s in data["sources"]] == [False, True]


def test_cli_sources_only_sends_nothing(invoke, docs, chat, fake_llm, db_path):
    for flag in ("--sources-only", "--no-llm"):
        result = invoke(["ask", "docs", "restore backup", "--mode", "text", flag, "-d", db_path])
        assert result.exit_code == 0, result.output
        assert "--- system ---" in result.stdout
        assert "[1] guide.md#4 (guide.md, lines 2-5)" in result.stdout
        assert result.stdout.rstrip().endswith("Question: restore backup")
    result = invoke(
        ["ask", "docs", "restore", "--mode", "text", "--no-llm", "--json", "-d", db_path]
    )
    data = json.loads(result.stdout)
    assert data["answer"] is None and data["sources"][0]["id"] == "guide.md#4"
    assert chat.requests == []


def test_cli_sources_only_needs_no_llm_at_all(invoke, docs, chat, db_path):
    result = invoke(["ask", "docs", "restore", "--mode", "text", "--sources-only", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert "Question: restore" in result.stdout
    result = invoke(["ask", "docs", "restore", "--mode", "text", "-d", db_path])
    one_line_error(result, "No LLM chosen")


def test_cli_nothing_relevant(invoke, docs, chat, fake_llm, db_path):
    result = invoke(["ask", "docs", "restore backup", "--min-score", "0.99", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("No passage of docs is close enough to the question")
    assert result.stderr.rstrip().endswith("< 0.99); not asking the model")
    result = invoke(
        ["ask", "docs", "restore backup", "--min-score", "0.99", "--json", "-d", db_path]
    )
    data = json.loads(result.stdout)
    assert data["answer"] is None and data["sources"] == []
    assert "not asking the model" in data["reason"]
    assert chat.requests == []


def test_cli_question_from_stdin(invoke, docs, chat, fake_llm, db_path):
    for args in (["ask", "docs"], ["ask", "docs", "-"]):
        result = invoke([*args, "--mode", "text", "-d", db_path], input="restore\n")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Answer from [1].")
        assert sent_prompt(chat)[1].strip() == "restore"
    result = invoke(["ask", "docs", "--mode", "text", "-d", db_path], input="  \n")
    one_line_error(result, "the input is empty")


def test_cli_continue_sends_the_history(invoke, docs, chat, fake_llm, db_path):
    first = invoke(["ask", "docs", "restore", "--mode", "text", "-d", db_path])
    assert first.exit_code == 0, first.output
    follow = invoke(["ask", "docs", "archives", "--mode", "text", "-c", "-d", db_path])
    assert follow.exit_code == 0, follow.output
    messages = chat.requests[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "restore"
    assert messages[2]["content"] == "Answer from [1]."
    assert sent_prompt(chat)[1].strip() == "archives"  # retrieved for the new question
    assert "Backup files are stored" in sent_prompt(chat)[0][1]
    stored = json.loads(history.history_path().read_text())
    assert history.history_path().parent == Path(os.environ["VIBES_HOME"])
    (conversation,) = stored["conversations"].values()
    assert [t["question"] for t in conversation["turns"]] == ["restore", "archives"]
    # A new question without --continue starts over.
    invoke(["ask", "docs", "restore", "--mode", "text", "-d", db_path])
    invoke(["ask", "docs", "archives", "--mode", "text", "--continue", "-d", db_path])
    assert [m["role"] for m in chat.requests[-1]["body"]["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]


def test_history_is_bounded_and_kept_per_collection(isolated_home, tmp_path):
    database = str(tmp_path / "x.db")
    for i in range(history.MAX_TURNS + 3):
        turn = {"question": f"q{i}", "answer": f"a{i}"}
        history.record_turn(database, "one", turn, continued=True)
    turns = history.last_turns(database, "one")
    assert [t["question"] for t in turns] == [f"q{i}" for i in range(3, history.MAX_TURNS + 3)]
    assert history.last_turns(database, "two") == []
    for i in range(history.MAX_CONVERSATIONS + 2):
        history.record_turn(database, f"c{i}", {"question": "q", "answer": "a"}, continued=False)
    assert history.last_turns(database, "one") == []  # the oldest conversation went
    assert history.last_turns(database, f"c{history.MAX_CONVERSATIONS + 1}")


def test_cli_errors_are_one_line(invoke, docs, chat, fake_llm, db_path, monkeypatch):
    monkeypatch.setenv("FAKE_CHAT_KEY", "sk-wrong")
    result = invoke(["ask", "docs", "restore", "--mode", "text", "-d", db_path])
    line = one_line_error(result, "401")
    assert "sk-wrong" not in line
    monkeypatch.setenv("FAKE_CHAT_KEY", KEY)
    from vibes.llms import register_llm

    register_llm("gone", api_url=chat.url, api_model="no-such-model", api_key_env="FAKE_CHAT_KEY")
    result = invoke(["ask", "docs", "restore", "--mode", "text", "-m", "gone", "-d", db_path])
    one_line_error(result, "no-such-model")
    one_line_error(invoke(["ask", "docs", "restore", "-m", "nope", "-d", db_path]), "nope")
    one_line_error(invoke(["ask", "nope", "restore", "-d", db_path]), "nope")
    usage = invoke(["ask", "docs", "x", "--mode", "text", "--hybrid", "-d", db_path])
    assert usage.exit_code == 2 and "not both" in usage.stderr
    assert invoke(["ask", "docs", "x", "-n", "0", "-d", db_path]).exit_code == 2
    assert invoke(["ask", "docs", "x", "--budget", "0", "-d", db_path]).exit_code == 2


def test_cli_a_stream_cut_off_keeps_what_was_printed(run, docs, chat, fake_llm, db_path):
    chat.cut = 2
    result = run(["ask", "docs", "restore", "--mode", "text", "-d", db_path])
    one_line_error(result)
    assert result.stdout == "Answer f\n"  # two pieces of four characters, then the line ends
    assert "cut off" in result.stderr
    assert "Sources:" not in result.stdout


def test_cli_streams_as_the_answer_arrives(docs, chat, fake_llm, db_path):
    chat.slow = 0.4  # before each of the answer's 4 pieces
    process = subprocess.Popen(
        [sys.executable, "-m", "vibes", "ask", "docs", "restore", "--mode", "text", "-d", db_path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = process.stdout.read(4)
    seen = time.monotonic()
    rest = process.stdout.read()
    ended = time.monotonic()
    process.wait(timeout=60)
    assert process.returncode == 0, process.stderr.read()
    assert first == b"Answ"
    # The first piece was printed while the 3 others were still coming.
    assert ended - seen >= 2 * chat.slow
    assert (first + rest).decode().startswith("Answer from [1].\n\nSources:\n[1] guide.md#4")


def test_cli_citation_warning_on_stderr(run, docs, chat, fake_llm, db_path):
    chat.reply = lambda messages: "See [5]."
    result = run(["ask", "docs", "restore", "--mode", "text", "-d", db_path])
    assert result.returncode == 0, result.stderr
    assert result.stderr == "Warning: The answer cites [5], but there is only 1 source\n"
    assert result.stdout.startswith("See [5].\n\nSources:\n")


def test_cli_budget_option_is_respected(invoke, docs, chat, fake_llm, db_path):
    result = invoke(
        [
            "ask",
            "docs",
            "restore backup",
            "--mode",
            "text",
            "--budget",
            "20",
            "--json",
            "-d",
            db_path,
        ]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    model = vibes.llms.get_llm("fake")
    sources, _ = sent_prompt(chat)
    block = chat.requests[-1]["body"]["messages"][-1]["content"]
    block = block[len("Sources:\n\n") : block.index("\n\nQuestion:")]
    assert model.count_tokens(block) <= 20
    assert data["sources"][-1]["truncated"] is True
    assert len(sources) == len(data["sources"])


# -- llm ---------------------------------------------------------------------------------


def llm_cli(args, env=None):
    # llm adds whatever its stdin holds to the prompt: give it none.
    return subprocess.run(
        [sys.executable, "-m", "llm", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_llm_fragment_loader_gives_the_packed_sources(docs, db_path):
    shown = llm_cli(["fragments", "show", "vibes:docs:restore backup"], {"VIBES_DB": db_path})
    assert shown.returncode == 0, shown.stderr
    # Hybrid search, as vibes ask does it: the best hit first, its neighbours merged.
    assert shown.stdout.startswith("[1] guide.md#4 (guide.md, lines ")
    assert shown.stdout.count("Restore a backup with the restore command.") == 1
    assert "\n\n[2] faq-archives\nBackup files are stored" in shown.stdout
    bad = llm_cli(["fragments", "show", "vibes:docs"], {"VIBES_DB": db_path})
    assert bad.returncode != 0 and "vibes:COLLECTION:QUESTION" in bad.stderr
    far = llm_cli(["fragments", "show", "vibes:nope:restore"], {"VIBES_DB": db_path})
    assert far.returncode != 0 and "nope" in far.stderr


def test_llm_prompt_with_a_vibes_fragment(docs, chat, db_path, tmp_path):
    """`llm -f vibes:...` through llm's own OpenAI-compatible model, at the fake server."""
    chat.key = None
    llm_home = Path(os.environ["LLM_USER_PATH"])
    llm_home.mkdir(parents=True, exist_ok=True)
    (llm_home / "extra-openai-models.yaml").write_text(
        f"- model_id: fake-chat\n  model_name: fake-chat\n  api_base: {chat.url}\n"
    )
    result = llm_cli(
        [
            "-m",
            "fake-chat",
            "-f",
            "vibes:docs:restore",
            "--no-log",
            "Cite the sources.\nQuestion: restore",
        ],
        {"VIBES_DB": db_path},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Answer from [1]."
    user = [m for m in chat.requests[-1]["body"]["messages"] if m["role"] == "user"][-1]
    assert user["content"].startswith("[1] guide.md#4 (guide.md, lines ")
    assert user["content"].endswith("\nCite the sources.\nQuestion: restore")


def test_llm_tool_searches_a_collection(docs, db_path):
    listed = llm_cli(["tools", "list"])
    assert listed.returncode == 0, listed.stderr
    assert "vibes_search(collection" in listed.stdout
    code = (
        "import json, llm; tool = llm.get_tools()['vibes_search'];"
        "print(tool.implementation(collection='docs', query='restore backup', n=2))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "VIBES_DB": db_path},
        timeout=120,
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert [h["id"] for h in hits][:1] == ["guide.md#4"]
    assert "Restore a backup" in hits[0]["text"]


TOOL_MODEL = '''
import json
import llm


class ToolTest(llm.Model):
    """Calls vibes_search for its prompt, then answers with the ids it was given."""

    model_id = "tool-test"
    supports_tools = True

    def execute(self, prompt, stream, response, conversation):
        if prompt.tool_results:
            hits = json.loads(prompt.tool_results[0].output)
            yield "found " + " ".join(hit["id"] for hit in hits)
            return
        arguments = {"collection": "docs", "query": prompt.prompt, "n": 2}
        response.add_tool_call(llm.ToolCall(name="vibes_search", arguments=arguments))
        yield ""


@llm.hookimpl
def register_models(register):
    register(ToolTest())
'''


def test_llm_model_calls_the_vibes_search_tool(docs, db_path, tmp_path):
    """A model of an llm plugin calls vibes_search through llm's own tool loop (-T)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "llm_tool_test.py").write_text(TOOL_MODEL)
    info = site / "llm_tool_test-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: llm-tool-test\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[llm]\nllm_tool_test = llm_tool_test\n")
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    env = {"VIBES_DB": db_path, "PYTHONPATH": path}
    result = llm_cli(["-m", "tool-test", "-T", "vibes_search", "--no-log", "restore backup"], env)
    assert result.returncode == 0, result.stderr
    # The two best hits are guide.md#4 and #3, merged into one passage.
    assert result.stdout.strip() == "found guide.md#4"
