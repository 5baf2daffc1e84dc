"""The CLI imports only what a command runs (cli.py's COMMANDS/MOUNTS): the table is checked against what
each mount really registers, every command still resolves, and `prove` starts without the exchange stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.main import get_group

import cli

ROOT = Path(__file__).resolve().parents[2]


def top_level(app: typer.Typer) -> set[str]:
    return set(get_group(app).commands)


def test_every_command_maps_to_the_mount_that_registers_it():
    full = top_level(cli.app)
    assert set(cli.COMMANDS) == full  # no command missing from the table, none invented
    for name, mount in cli.COMMANDS.items():
        assert name in top_level(cli.build_app([mount])), f"{name} is not registered by mount {mount!r}"


@pytest.mark.parametrize("argv,expected", [(["prove", "a.zkey"], ("prove",)), (["--help"], tuple(cli.MOUNTS)),
                                           ([], tuple(cli.MOUNTS)), (["nosuch"], tuple(cli.MOUNTS)),
                                           (["provider", "list", "--json"], ("provider",))])
def test_mounts_for_a_command_line(argv, expected):
    assert tuple(cli.mounts_for(argv)) == expected


def test_provider_mount_alone_has_its_commands():
    group = get_group(cli.build_app(["provider"]))
    assert set(group.commands["provider"].commands) >= {"start", "drain", "stop", "list"}


def test_prove_starts_without_the_exchange_stack():
    code = ("import sys; sys.argv = ['raymarket', 'prove', '--help']; import cli\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('fastapi', 'web3', 'eth_account', 'sqlalchemy', 'ray') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in res.stdout, res.stdout + res.stderr
