"""``vibes score``, ``vibes classify`` and ``vibes duplicates``: analyses of a collection's
vectors, thin shells over :mod:`vibes.analysis`."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from . import cli
from .options import database_option, emit_json_lines, emit_table, open_database


def _short(text: str | None, width: int = 60) -> str:
    """One line of at most ``width`` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def _positive(number: int | None, option: str = "'-n' / '--number'") -> None:
    if number is not None and number < 1:
        raise click.BadParameter("must be at least 1", param_hint=option)


@cli.command()
@click.argument("collection")
@click.option(
    "--axis",
    nargs=2,
    metavar="LOW HIGH",
    help="The axis's two ends: a term each (add more with --low/--high)",
)
@click.option("--low", multiple=True, metavar="TERM", help="A term at the low end; repeatable")
@click.option("--high", multiple=True, metavar="TERM", help="A term at the high end; repeatable")
@click.option("--documents", is_flag=True, help="Score chunked documents as wholes")
@click.option("-n", "--number", type=int, help="Print only the first N")
@click.option("--sort/--no-sort", default=True, show_default=True, help="Highest first, else by id")
@click.option("--reverse", is_flag=True, help="Lowest first (the low end's side first)")
@click.option("--no-content", is_flag=True, help="Leave out each item's stored text")
@click.option("--table", is_flag=True, help="An aligned table instead of JSON lines")
@database_option
def score(
    collection: str,
    axis: tuple[str, str] | None,
    low: tuple[str, ...],
    high: tuple[str, ...],
    documents: bool,
    number: int | None,
    sort: bool,
    reverse: bool,
    no_content: bool,
    table: bool,
    database: str | None,
) -> None:
    """Place every item of COLLECTION on an axis between two meanings.

    Each end of the axis is the average location of its terms: texts (embedded by the
    collection's model, as 'vibes similar -c' embeds them), id:ITEM (a stored item, or a
    chunked document as a whole), file:PATH (a file's content; images for image models)
    or text:TEXT (a text starting with 'id:' or 'file:'). An item's score is where its
    vector falls on the line from the low end (0) to the high end (1), 0.5 half way;
    beyond an end it is below 0 or above 1. In a cosine collection that is the item's
    similarity to the high end less its similarity to the low end, scaled so the ends
    score 0 and 1.

    One JSON object per line, highest first: {"id", "score", "content"}.

    \b
    Examples:
      vibes score docs --axis abstract concrete
      vibes score docs --low abstract --low theory --high concrete --high 'worked example'
      vibes score docs --axis id:intro.md file:examples.txt -n 5 --table
      vibes score docs --axis 'for beginners' 'for experts' --documents --reverse
    """
    _positive(number)
    lows = [*([axis[0]] if axis else []), *low]
    highs = [*([axis[1]] if axis else []), *high]
    if not lows or not highs:
        raise click.UsageError("Give both ends of the axis: --axis LOW HIGH, or --low and --high")
    from ..analysis.score import score_axis

    target = open_database(database).collection(collection, create=False)
    scored = score_axis(
        target,
        lows,
        highs,
        documents=documents,
        content=not no_content,
        sort=sort,
        reverse=reverse,
        n=number,
    )
    if table:
        columns = ["id", "score"] if no_content else ["id", "score", "content"]
        emit_table(
            [{"id": s.id, "score": f"{s.score:.4f}", "content": _short(s.content)} for s in scored],
            columns,
        )
        return
    for entry in scored:
        row: dict[str, Any] = {"id": entry.id, "score": round(entry.score, 6)}
        if not no_content:
            row["content"] = entry.content
        click.echo(json.dumps(row, ensure_ascii=False))


@cli.command()
@click.argument("collection")
@click.option(
    "--labels",
    "labels_path",
    required=True,
    metavar="FILE",
    help="Labelled items: CSV with header id,label (.tsv: TSV; .jsonl/.json: JSON lines "
    "of {id, label}); - reads CSV from stdin",
)
@click.option("--documents", is_flag=True, help="Classify chunked documents as wholes")
@click.option("--scores", is_flag=True, help="Add every label's score to each prediction")
@click.option(
    "--evaluate",
    is_flag=True,
    help="Hold out some labelled items, fit on the rest, print the held-out accuracy",
)
@click.option(
    "--test-size",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="With --evaluate: the share of each label's items held out",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="With --evaluate: the random split"
)
@click.option("--table", is_flag=True, help="An aligned table instead of JSON")
@database_option
def classify(
    collection: str,
    labels_path: str,
    documents: bool,
    scores: bool,
    evaluate: bool,
    test_size: float,
    seed: int,
    table: bool,
    database: str | None,
) -> None:
    """Label the unlabelled items of COLLECTION by the nearest centroid.

    Each label's centroid is the mean of its labelled items' vectors (unit vectors in a
    cosine collection); every other item gets the label whose centroid is nearest
    (euclidean distance, exactly as scikit-learn's NearestCentroid). One JSON object per
    line, by id: {"id", "label", "confidence"}, where confidence is 1 - d1/d2 for the
    distances to the nearest and second nearest centroids: 0 is a toss-up between two
    labels, 1 sits on the centroid. --scores adds "scores": each label's
    1 / (1 + distance).

    --evaluate holds out --test-size of each label's items (at random, by --seed), fits
    on the rest, and prints one JSON object: {"accuracy", "train", "test", "labels":
    {label: {"precision", "recall", "support"}}}. Items are never changed.

    \b
    Examples:
      vibes classify issues --labels labels.csv
      vibes classify issues --labels labels.csv --scores --table
      vibes classify issues --labels labels.tsv --evaluate --test-size 0.3 --seed 7
      cut -d, -f1,3 triage.csv | vibes classify issues --labels -
    """
    from ..analysis import classify as analysis

    if labels_path == "-":
        labels = analysis.read_labels("stdin.csv", sys.stdin.read())
    else:
        labels = analysis.read_labels(labels_path)
    target = open_database(database).collection(collection, create=False)
    if evaluate:
        evaluation = analysis.evaluate_classifier(
            target, labels, test_size=test_size, seed=seed, documents=documents
        )
        _say_unknown(evaluation.unknown, collection)
        if table:
            click.echo(
                f"accuracy {evaluation.accuracy:.4f} on {evaluation.test} held-out items "
                f"(fitted on {evaluation.train})"
            )
            emit_table(
                [
                    {
                        "label": name,
                        "precision": "" if s.precision is None else f"{s.precision:.4f}",
                        "recall": "" if s.recall is None else f"{s.recall:.4f}",
                        "support": s.support,
                    }
                    for name, s in evaluation.labels.items()
                ],
                ["label", "precision", "recall", "support"],
            )
        else:
            click.echo(json.dumps(evaluation.to_dict(), ensure_ascii=False))
        return
    result = analysis.classify(target, labels, documents=documents, scores=scores)
    _say_unknown(result.unknown, collection)
    if table:
        rows = []
        for prediction in result.predictions:
            row: dict[str, Any] = {
                "id": prediction.id,
                "label": prediction.label,
                "confidence": f"{prediction.confidence:.4f}",
            }
            for name, value in (prediction.scores or {}).items():
                row[name] = f"{value:.4f}"
            rows.append(row)
        emit_table(rows, ["id", "label", "confidence", *(result.labels if scores else [])])
    else:
        emit_json_lines(prediction.to_dict() for prediction in result.predictions)


def _say_unknown(unknown: list[str], collection: str) -> None:
    if unknown:
        examples = ", ".join(repr(item) for item in unknown[:3])
        more = ", ..." if len(unknown) > 3 else ""
        _warn(
            f"{len(unknown)} labelled id{'s are' if len(unknown) > 1 else ' is'} not in "
            f"collection {collection!r}, left out ({examples}{more})"
        )


@cli.command()
@click.argument("collection")
@click.option(
    "-t",
    "--threshold",
    type=float,
    default=0.95,
    show_default=True,
    help="Lowest score of a pair (the collection's similarity: cosine by default)",
)
@click.option("--documents", is_flag=True, help="Compare chunked documents as wholes")
@click.option("-n", "--number", type=int, help="Only the N best pairs (or largest groups)")
@click.option("--group", is_flag=True, help="Print connected groups instead of pairs")
@click.option(
    "--block",
    type=click.IntRange(min=1),
    help="Rows compared at a time (default: as many as keep a block near 64 MiB)",
)
@click.option("--table", is_flag=True, help="An aligned table instead of JSON lines")
@database_option
def duplicates(
    collection: str,
    threshold: float,
    documents: bool,
    number: int | None,
    group: bool,
    block: int | None,
    table: bool,
    database: str | None,
) -> None:
    """Near-duplicate pairs in COLLECTION: items whose similarity reaches --threshold.

    One JSON object per line, best first: {"id", "other_id", "score"}, each pair once
    with id < other_id. The score is the collection's search score (cosine similarity by
    default), rounded to 6 decimals, so identical vectors score 1.0. --group prints
    connected groups instead, largest first: {"ids", "size", "max_score", "min_score"}
    (members are joined through pairs: two of them may score below the threshold with
    each other). Memory stays near --block rows by all rows, never all pairs at once.

    \b
    Examples:
      vibes duplicates docs
      vibes duplicates docs --threshold 0.9 -n 20 --table
      vibes duplicates docs --threshold 0.98 --group
      vibes duplicates docs --documents --threshold 0.97
    """
    _positive(number)
    from ..analysis.duplicates import find_duplicates, group_pairs

    target = open_database(database).collection(collection, create=False)
    if group:
        groups = group_pairs(find_duplicates(target, threshold, documents=documents, block=block))
        if number is not None:
            groups = groups[:number]
        if table:
            emit_table(
                [
                    {
                        "size": len(g.ids),
                        "max_score": f"{g.max_score:.4f}",
                        "min_score": f"{g.min_score:.4f}",
                        "ids": _short(", ".join(g.ids), 80),
                    }
                    for g in groups
                ],
                ["size", "max_score", "min_score", "ids"],
            )
        else:
            emit_json_lines(g.to_dict() for g in groups)
        return
    pairs = find_duplicates(target, threshold, documents=documents, block=block, limit=number)
    if table:
        emit_table(
            [{"id": p.id, "other_id": p.other_id, "score": f"{p.score:.4f}"} for p in pairs],
            ["id", "other_id", "score"],
        )
    else:
        emit_json_lines(p.to_dict() for p in pairs)
