"""Recommend for one playlist (or a few) from the command line, with the same ensemble as step 4.

    python predictor/recommend.py --question='{"songs": [525514], "tags": ["기분전환"], "plylst_title": "밤"}'
    python predictor/recommend.py --question_file=q.json      # one question object, or a list of them

Prints one JSON line {"id", "songs": [100], "tags": [10]} per question, in input order. A question uses the
official keys only (id, songs, tags, plylst_title, updt_date, like_cnt; another key, a misspelling, is refused) and
gives at least one of songs, tags, plylst_title. Missing fields get defaults: songs / tags [], plylst_title "", id
the question's position, and updt_date the far future, so that no song is dropped for being issued after the
playlist was last updated. Songs and tags that are not in the vocabulary cannot be used by the models; a warning on
stderr says how many and which.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from common.cli import check_flags, check_gpu, run_cli
from common.jsonio import InputError, load_json
from data_loader.dumps import load_dumps
from data_loader.vocab import Vocab
from predictor.ensembling import (TITLE_IMPORTANCE, TITLE_TAG_WEIGHT, encode_questions, ensemble_recommend,
                                  load_members, to_records)
from trainer.device import pick_device

FAR_FUTURE = "9999-12-31 23:59:59.999"  # updt_date of a question without one: no date filter


KEYS = ("id", "songs", "tags", "plylst_title", "updt_date", "like_cnt")  # the official playlist fields
CONTENT = ("songs", "tags", "plylst_title")  # what the models recommend from


def with_defaults(question: dict, position: int, source: str) -> dict:
    """A question object completed with the defaults above (the given fields win). A misspelt key would be ignored
    and its question answered with the cold-start list, so unknown keys, and a question with none of CONTENT, are
    refused."""
    where = f"{source}: question {position}"
    if not isinstance(question, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(question).__name__}")
    unknown = [k for k in question if k not in KEYS]
    if unknown:
        raise InputError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                         f"the keys are {', '.join(KEYS)}")
    if not any(k in question for k in CONTENT):
        named = f" (id {question['id']})" if "id" in question else ""
        raise InputError(f"{where}{named} gives none of {', '.join(CONTENT)}: nothing to recommend from")
    return {"id": position, "songs": [], "tags": [], "plylst_title": "", "updt_date": FAR_FUTURE, **question}


def _keyed_by_name(data: object) -> bool:
    """A JSON object of objects, none under a question key: questions keyed by name, not one question."""
    return (isinstance(data, dict) and bool(data) and all(isinstance(v, dict) for v in data.values())
            and not any(k in KEYS for k in data))


def parse_questions(question: str | dict | list | None, question_file: str | None) -> tuple[list[dict], str]:
    """The question records and a name for them in error messages."""
    if (question is None) == (question_file is None):
        raise InputError("give exactly one of --question (JSON) and --question_file")
    if question_file is not None:
        data, source = load_json(question_file), str(question_file)
    elif isinstance(question, str):  # fire hands JSON it could not read as a Python literal over as a string
        try:
            data = json.loads(question)
        except json.JSONDecodeError as e:
            raise InputError(f"--question: malformed JSON at column {e.colno}: {e.msg}") from None
        source = "--question"
    else:
        data, source = question, "--question"
    if _keyed_by_name(data):
        names = ", ".join(map(repr, list(data)[:3])) + (", ..." if len(data) > 3 else "")
        raise InputError(f"{source}: a JSON object of questions keyed by name ({names}); give one question object "
                         f"or a list of them")
    items = data if isinstance(data, list) else [data]
    return [with_defaults(q, i, source) for i, q in enumerate(items)], source


def unknown_items(records: list[dict], vocab: Vocab, shown: int = 5) -> str | None:
    """A warning naming the songs and tags of the questions that are not in the vocabulary (the models cannot use
    them, so they are left out), up to `shown` of each; None when every item is known."""
    songs = [s for r in records for s in r["songs"]]
    songs = list(dict.fromkeys(np.asarray(songs, dtype=np.int64)[vocab.song_labels(songs) < 0].tolist()))
    tags = list(dict.fromkeys(t for r in records for t in r["tags"] if vocab.tag_label(t) < 0))
    parts = [f"{len(items)} {kind}{'s' if len(items) > 1 else ''} ({', '.join(map(repr, items[:shown]))}"
             f"{', ...' if len(items) > shown else ''})" for kind, items in (("song", songs), ("tag", tags)) if items]
    return f"not in the vocabulary, so not used: {' and '.join(parts)}" if parts else None


def main(question: str | dict | list | None = None, question_file: str | None = None, gpu: int | None = None,
         output_dir: str = "output", title_importance: float = TITLE_IMPORTANCE,
         title_tag_weight: float = TITLE_TAG_WEIGHT) -> None:
    """Print the ensemble's recommendation for each question.

    Args:
        question: one question as JSON ({"songs", "tags", "plylst_title", "updt_date", "id"}; at least one of the
            first three) or a list.
        question_file: a JSON file holding one question object or a list of them.
        gpu: CUDA device; -1 = CPU; unset = cuda:0 when there is one, else the CPU.
        output_dir: the folder holding dumps/ and the two run folders with best.pt.
        title_importance: as in predictor/Ensemble.py.
        title_tag_weight: as in predictor/Ensemble.py.
    """
    check_flags(title_importance=(title_importance > 0, "> 0 (a title-only question has n = 0)"),
                title_tag_weight=(title_tag_weight >= 0, "at least 0"))
    check_gpu(gpu)
    records, source = parse_questions(question, question_file)
    device = pick_device(gpu)
    dumps = load_dumps(output_dir)
    members = load_members(output_dir, dumps, device, title_importance=title_importance,
                           title_tag_weight=title_tag_weight)
    q = encode_questions(records, source, dumps)
    warning = unknown_items(records, dumps.vocab)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    rec = ensemble_recommend(members, q, dumps.vocab, dumps.song_issue_dates, device)
    for r in to_records(q, rec, dumps.vocab, order=np.arange(len(q))):
        print(json.dumps(r, ensure_ascii=False))


if __name__ == "__main__":
    run_cli(main)
