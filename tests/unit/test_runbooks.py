"""The runbooks (docs/operations/backup.md, restore.md, disaster-recovery.md, maintenance.md) name real
commands, real options and real tests: a renamed command or test breaks this, not a 3 a.m.
recovery."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from waymark.cli import main

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = [ROOT / "docs" / "operations" / n for n in ("backup.md", "restore.md",
                                                         "disaster-recovery.md",
                                                         "maintenance.md", "cluster.md",
                                                         "scaling.md")]
# `waymark ...` at the start of a line or code span, or after `&&` / `$ ` / `=... `
COMMAND = re.compile(r"(?:^\s*|(?<=`)|(?<=&& )|(?<=\$ )|(?<=\S=\S) ?)"
                     r"waymark((?: [a-z][a-z-]*)+)((?: (?:--?[a-z][a-z-]*|[^\s`|;#]+))*)")
TEST_REF = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?")


def _commands(text: str) -> list[tuple[list[str], list[str]]]:
    found = []
    for line in text.splitlines():
        for match in COMMAND.finditer(line):
            words = match.group(1).split()
            options = [w.split("=")[0] for w in match.group(2).split() if w.startswith("-")]
            found.append((words, options))
    return found


def _resolve(words: list[str]) -> click.Command | None:
    command: click.Command = main
    for word in words:
        if not isinstance(command, click.Group) or word not in command.commands:
            return command if command is not main else None
        command = command.commands[word]
    return command


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=lambda p: p.name)
def test_commands_and_options_exist(runbook):
    commands = _commands(runbook.read_text())
    assert commands, f"{runbook.name} names no waymark command"
    for words, options in commands:
        command = _resolve(words)
        assert command is not None, f"{runbook.name}: `waymark {' '.join(words)}` does not exist"
        known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        for option in options:
            assert option in known, f"{runbook.name}: `{command.name}` has no option {option}"


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=lambda p: p.name)
def test_referenced_tests_exist(runbook):
    refs = TEST_REF.findall(runbook.read_text())
    assert refs, f"{runbook.name} names no test"
    for path, name in refs:
        source = (ROOT / path).read_text()
        assert not name or f"def {name}(" in source, f"{runbook.name}: {path}::{name} missing"


def test_the_drills_run_the_documented_commands():
    """The commands the DR drill and the restore tests run are the ones the runbooks give."""
    drill = (ROOT / "tests" / "integration" / "test_dr.py").read_text()
    cli = (ROOT / "tests" / "integration" / "test_backup_cli.py").read_text()
    restore = (ROOT / "docs" / "operations" / "restore.md").read_text()
    dr = (ROOT / "docs" / "operations" / "disaster-recovery.md").read_text()
    for args, text in [('"restore", "--to-time"', restore), ('"backup", "restore-objects"', dr),
                       ('"backup", "objects"', dr), ('"backup", "status"', restore)]:
        assert args in drill, args
        assert "waymark " + " ".join(a.strip('"') for a in args.split(", ")) in text, args
    for args in ('"keys", "rotate", "--retire-old"', '"backup", "retention"',
                 '"backup", "archive-get"', '"backup", "config"'):
        assert args in cli, args
        words = " ".join(a.strip('"') for a in args.split(", "))
        assert f"waymark {words}" in (ROOT / "docs" / "operations" / "backup.md").read_text() \
            or f"waymark {words}" in restore, args


def test_maintenance_runbook_names_every_job_with_its_setting():
    """Each routine maintenance job is in the runbook's table with the setting that governs
    it, and the schedule the worker really uses."""
    from waymark.maintenance.jobs import jobs

    text = (ROOT / "docs" / "operations" / "maintenance.md").read_text()
    for job in jobs():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{job.name}` |")),
                   None)
        assert row is not None, f"maintenance.md has no row for the {job.name} job"
        assert job.setting in row, f"maintenance.md: {job.name} row does not name {job.setting}"
        hourly = set(job.schedule) == {"minute"}
        assert ("hourly" in row) == hourly, f"maintenance.md: {job.name} schedule"
    for tool in ("make upgrade", "deploy/container/build-base.sh --check", "weekly.yml",
                 "CHANGELOG.md"):
        assert tool in text, tool
def test_the_rehearsed_move_runs_the_documented_steps():
    """Every `waymark` command of scaling.md's move procedure is one the rehearsal runs."""
    doc = (ROOT / "docs" / "operations" / "scaling.md").read_text()
    section = doc.split("## Moving to PostgreSQL", 1)[1].split("\n## ", 1)[0]
    steps = section.split("```sh", 1)[1].split("```", 1)[0]
    rehearsal = (ROOT / "tests" / "integration" / "test_pg_move.py").read_text()
    commands = [line.split("#")[0].split()[1:] for line in steps.splitlines()
                if line.startswith("waymark ")]
    assert len(commands) >= 6, steps
    for words in commands:
        name = [w for w in words if not w.startswith("$") and "/" not in w][:3]
        quoted = ", ".join(f'"{w}"' for w in name)
        if name == ["serve"]:
            quoted = "start_serve(env"  # tests/integration/test_dr.py: `waymark serve`
        assert quoted in rehearsal, f"the rehearsal does not run `waymark {' '.join(name)}`"
