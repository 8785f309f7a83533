"""ColonyOS-style env files."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.envfile import format_envfile, load_envfile, parse_envfile

TEXT = '''\
# Colonies dev environment
export LANG=en_US.UTF-8
export COLONIES_SERVER_HOST="localhost"
export COLONIES_SERVER_PORT=50080
COLONIES_COLONY_NAME='dev'
export AWS_S3_REGION_KEY=""
export TZ=Europe/Stockholm   # trailing comment
export MSG="two words # not a comment"
unset COLONIES_TLS
   export   SPACED = "x"
not a line
export COLONIES_SERVER_PORT=50081
'''


def test_parses_exports_quotes_and_comments() -> None:
    env = parse_envfile(TEXT)
    assert env["COLONIES_SERVER_HOST"] == "localhost"
    assert env["COLONIES_SERVER_PORT"] == "50081"  # the later line wins, as when sourced
    assert env["COLONIES_COLONY_NAME"] == "dev"
    assert env["AWS_S3_REGION_KEY"] == ""
    assert env["TZ"] == "Europe/Stockholm"
    assert env["MSG"] == "two words # not a comment"
    assert env["LANG"] == "en_US.UTF-8"
    assert "COLONIES_TLS" not in env and "not" not in env
    assert env["SPACED"] == "x"


def test_format_then_load_round_trips(tmp_path: Path) -> None:
    env = {"A": "plain", "B": "with space", "C": "quote ' and \" both", "D": "", "E": "$HOME"}
    path = tmp_path / "env"
    path.write_text(format_envfile(env))
    assert load_envfile(path) == env


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True),
                       st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40),
                       max_size=8))
def test_any_env_round_trips(env: dict[str, str]) -> None:
    assert parse_envfile(format_envfile(env)) == env
