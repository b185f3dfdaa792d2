"""``hazmat import metr``: a task family in METR's format (tests/…/data/primes, written for
these tests): two variants from ``get_tasks`` and a scored ``intermediate_score``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hazmat.agents.models import Agent
from hazmat.runner import run_tasks
from hazmat.tasks.importers import import_tasks
from hazmat.tasks.load import discover_tasks, load_variants
from hazmat.validate import validate_tasks

from .conftest import DATA

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600)]

FAMILY = DATA / "primes"


def test_family_imports_with_two_variants(tmp_path: Path) -> None:
    report = import_tasks("metr", FAMILY, tmp_path / "metr")
    [entry] = report.tasks
    assert entry.variants == ["five", "twelve"] and entry.solution == "proven"
    five, twelve = load_variants(tmp_path / "metr" / "primes")
    assert (five.id, twelve.id) == ("metr/primes@five", "metr/primes@twelve")
    assert "first 5 prime" in five.instructions and "first 12 prime" in twelve.instructions
    assert json.loads(five.sandbox.files["/root/metr/hazmat_task.json"].data()) == {"n": 5}
    assert json.loads(twelve.sandbox.files["/root/metr/hazmat_task.json"].data()) == {"n": 12}
    progress, score = five.milestones
    assert progress.every_step and progress.check.sandbox and progress.check.sandbox.score
    assert score.check.sandbox and score.check.sandbox.stdin == "submission"
    assert five.scoring.aggregate == "best"
    assert five.sandbox.setup == ["cd /root/metr && python3 -I hazmat_metr.py start"]
    family = five.sandbox.files["/root/metr/primes.py"].data()
    assert family == (FAMILY / "primes.py").read_bytes()
    assert "solution" not in {
        Path(p).parts[3] for p in five.sandbox.files if len(Path(p).parts) > 3
    }


@pytest.mark.docker
async def test_family_validates_and_scores_partial_work(tmp_path: Path) -> None:
    import_tasks("metr", FAMILY, tmp_path / "metr")
    tasks = discover_tasks([tmp_path / "metr"])
    _, verdicts = await validate_tasks(tasks, sandbox="auto", out_dir=tmp_path / "runs", jobs=2)
    assert [(v.task_id, v.ok, v.proven) for v in verdicts] == [
        ("metr/primes@five", True, True),
        ("metr/primes@twelve", True, True),
    ], [v.problems for v in verdicts]
    # an agent that writes 3 of the 12 primes, then all 12 and forgets to say done, gets
    # intermediate scores 0.25 then 1.0 (best: 1.0) and a final score of 0.5
    twelve = next(t for t in tasks if t.variant == "twelve")
    script = [
        {"tool": "bash", "command": "printf '2\\n3\\n5\\n' > /home/agent/primes.txt"},
        {
            "tool": "bash",
            "command": "printf '2\\n3\\n5\\n7\\n11\\n13\\n17\\n19\\n23\\n29\\n31\\n37\\n' "
            "> /home/agent/primes.txt",
        },
        {"tool": "submit", "answer": "finished"},
    ]
    agent = Agent(name="partial", kind="scripted", script=script)
    run_dir, [result] = await run_tasks(
        [twelve], [agent], backend="docker", out_dir=tmp_path / "runs2"
    )
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    samples = [
        (e["id"], e["value"])
        for e in events
        if e["event"] == "note" and e.get("kind") == "milestone_score"
    ]
    assert samples[:2] == [("progress", 0.25), ("progress", 1.0)]
    assert ("score", 0.5) in samples
    assert result.scores == {"progress": 1.0, "score": 0.5}
    assert result.progress == pytest.approx(0.75)
    assert [m["id"] for m in result.milestones] == ["progress"]
