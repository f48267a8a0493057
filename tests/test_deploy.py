"""Deployment files agree with each other: docker-compose.yml, .env.example and the variables settings.py reads."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "helpdesk" / "settings.py"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
ENV_METHODS = {
    "str",
    "bool",
    "int",
    "float",
    "list",
    "tuple",
    "dict",
    "json",
    "url",
    "db",
    "db_url",
    "cache",
    "path",
}
# The secrets .env.example leaves empty on purpose, with stand-ins for the validation below.
DUMMY_SECRETS = {
    "SECRET_KEY": "compose-config-test-secret",
    "POSTGRES_PASSWORD": "pgpassword",
    "MINIO_ROOT_USER": "helpdesk",
    "MINIO_ROOT_PASSWORD": "miniopassword",
}


@cache
def settings_variables() -> frozenset[str]:
    """Names passed to env.str(...), env.bool(...), env(...) etc. in settings.py, found with ast."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        is_env_call = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute)
            and func.attr in ENV_METHODS
            and isinstance(func.value, ast.Name)
            and func.value.id == "env"
        )
        if not is_env_call:
            continue
        first = node.args[0] if node.args else None
        assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
            f"settings.py line {node.lineno}: read variables by literal name so they can be checked"
        )
        names.add(first.value)
    return frozenset(names)


def example_variables() -> dict[str, str]:
    """NAME -> value for every `NAME=value` and commented `# NAME=value` line of .env.example."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            found[match[1]] = match[2]
    return found


def active_example_values() -> dict[str, str]:
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), flags=re.M))


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def app_services() -> dict[str, dict]:
    """The services running the helpdesk image (built from the Dockerfile)."""
    return {name: svc for name, svc in compose()["services"].items() if "build" in svc}


def compose_interpolated_variables() -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))


# --- settings.py, .env.example and the compose file agree --------------------------------------------------


def test_settings_variables_are_found():
    names = settings_variables()
    assert len(names) > 30, names
    assert {"SECRET_KEY", "DATABASE_URL", "PASSWORD_HASHERS", "LOG_FORMAT"} <= names


def test_every_settings_variable_is_in_env_example():
    missing = sorted(settings_variables() - example_variables().keys())
    assert not missing, f"add these to .env.example with a comment and a safe default: {missing}"


def test_env_example_lists_nothing_that_no_one_reads():
    known = settings_variables() | compose_interpolated_variables()
    stale = sorted(example_variables().keys() - known)
    assert not stale, f"neither settings.py nor docker-compose.yml reads these .env.example entries: {stale}"


def test_every_compose_only_variable_is_in_env_example():
    missing = sorted(compose_interpolated_variables() - example_variables().keys())
    assert not missing, f"docker-compose.yml interpolates these; list them in .env.example: {missing}"


def test_compose_passes_app_services_only_variables_settings_reads():
    services = app_services()
    assert {"web", "worker", "beat", "imap-idle"} <= services.keys()
    for name, svc in services.items():
        env = svc.get("environment") or {}
        keys = set(env) if isinstance(env, dict) else {item.split("=", 1)[0] for item in env}
        unknown = sorted(keys - settings_variables())
        assert not unknown, f"service {name} sets variables settings.py never reads: {unknown}"
        assert svc.get("env_file") == ".env", name


def test_every_service_restarts_and_the_backing_services_have_health_checks():
    services = compose()["services"]
    for name, svc in services.items():
        expected = "no" if name == "minio-init" else "unless-stopped"
        assert svc.get("restart") == expected, name
    for name in ("postgres", "redis", "minio", "web"):
        assert "healthcheck" in services[name], name
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    assert "/healthz" in (ROOT / "docker" / "healthcheck.py").read_text()
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["minio-init"]["image"].startswith("minio/mc")


def test_env_example_values_are_the_settings_defaults(tmp_path):
    """Copying .env.example to .env changes nothing but the secrets: its values are the built-in defaults."""
    script = (
        "import json, helpdesk.settings as s; "
        "print(json.dumps({k: repr(getattr(s, k)) for k in dir(s) if k.isupper() and k != 'SECRET_KEY'}))"
    )
    base = {k: v for k, v in os.environ.items() if k not in example_variables()}
    base.update(
        HELPDESK_TESTING="1",
        HELPDESK_VAR_DIR=str(tmp_path),
        SECRET_KEY="same-in-both-runs",
        HELPDESK_ENV_FILE="",
    )

    def dump(extra: dict[str, str]) -> dict:
        env = {**base, **extra}
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    example = {
        k: v for k, v in active_example_values().items() if k in settings_variables() and k != "SECRET_KEY"
    }
    defaults, with_example = dump({}), dump(example)
    differing = {
        k: (defaults[k], with_example.get(k)) for k in defaults if defaults[k] != with_example.get(k)
    }
    assert not differing, f".env.example values that differ from settings.py's defaults: {differing}"


# --- docker-compose accepts the file ----------------------------------------------------------------------


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.fixture
def compose_dir(tmp_path) -> Path:
    """A copy of the deployment files with .env made from .env.example, as an operator would."""
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "docker", tmp_path / "docker")
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={DUMMY_SECRETS[name]}" if name in DUMMY_SECRETS else line)
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    return tmp_path


def run_compose_config(directory: Path) -> subprocess.CompletedProcess:
    command = compose_command()
    if command is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("docker-compose (Debian package docker-compose) is needed in CI to validate the file")
        pytest.skip("neither docker-compose nor `docker compose` is installed")
    env = {k: v for k, v in os.environ.items() if k not in example_variables()}  # only .env interpolates
    return subprocess.run(
        [*command, "-f", "docker-compose.yml", "config"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_docker_compose_accepts_the_file(compose_dir):
    result = run_compose_config(compose_dir)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    web = resolved["services"]["web"]
    assert web["environment"]["DATABASE_URL"] == "postgres://helpdesk:pgpassword@postgres:5432/helpdesk"
    assert web["environment"]["SECRET_KEY"] == DUMMY_SECRETS["SECRET_KEY"]  # from env_file
    assert web["command"][:2] == ["gunicorn", "helpdesk.wsgi"]
    assert resolved["services"]["worker"]["command"][:4] == ["celery", "-A", "helpdesk", "worker"]
    assert resolved["services"]["beat"]["command"][:4] == ["celery", "-A", "helpdesk", "beat"]
    assert resolved["services"]["imap-idle"]["command"] == ["python", "manage.py", "imap_idle"]


def test_docker_compose_refuses_to_start_without_the_database_password(compose_dir):
    env_file = compose_dir / ".env"
    env_file.write_text(
        re.sub(r"^POSTGRES_PASSWORD=.*$", "POSTGRES_PASSWORD=", env_file.read_text(), flags=re.M)
    )
    result = run_compose_config(compose_dir)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_dockerfile_runs_as_a_non_root_user_and_installs_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.12-slim", dockerfile, flags=re.M)
    assert re.search(r"^USER (?!root)\S+", dockerfile, flags=re.M)
    assert "pip install ." in dockerfile
    entrypoint = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert "migrate --noinput" in entrypoint
    assert "collectstatic --noinput" in entrypoint
    assert os.access(ROOT / "docker" / "entrypoint.sh", os.X_OK)
