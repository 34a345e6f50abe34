"""`make run` refuses a port that is taken, and what it prints works pasted into a fresh shell."""

import socket
import subprocess
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from experiments.management.commands.steward_run import Command, port_check

ROOT = Path(__file__).resolve().parents[2]


def test_a_taken_port_stops_the_start_naming_the_port_and_the_way_out():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        expected = rf"Port {port} on 127.0.0.1 is already in use.*PORT={port + 1}"
        with pytest.raises(CommandError, match=expected):
            port_check("127.0.0.1", port)
        # Before anything else happens: no migration, no credentials, no banner.
        with pytest.raises(CommandError, match="already in use"):
            call_command("steward_run", host="127.0.0.1", port=port, no_demo=True)


def test_a_free_port_passes():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    port_check("127.0.0.1", port)


def test_the_banner_names_make_targets_not_a_bare_python():
    class Admin:
        username = "admin"

    lines = "\n".join(Command()._credential_lines(Admin(), "pw", "stw_x")
                      + Command()._credential_lines(Admin(), None, None))
    assert "make token USER=admin" in lines and "make password USER=admin" in lines
    assert "python manage.py" not in lines


def test_make_token_without_a_user_says_how_to_name_one():
    result = subprocess.run(["make", "-s", "token"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "make token USER=<username>" in result.stderr
