"""docker-compose.yml and its CPU override, checked without a Docker engine (none runs here).

Every command a service runs must parse with the real `basin` / `ray` / gunicorn entry points,
every environment variable it sets must be one that the code (ours or Ray's) reads, and images,
volumes, secrets and dependencies must be consistent.
"""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUR_PACKAGES = ("trainers", "storage", "study", "dashboards")


class ComposeLoader(yaml.SafeLoader):
    """SafeLoader plus Compose's `!reset` / `!override` merge tags."""


ComposeLoader.add_constructor("!reset", lambda loader, node: loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else None)
ComposeLoader.add_constructor("!override", lambda loader, node: loader.construct_object(node))


def load(name: str) -> dict:
    return yaml.load((ROOT / name).read_text(), Loader=ComposeLoader)


def interpolate(text: str) -> str:
    """Compose's ${VAR:-default} with nothing set in the environment."""
    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", text)


def argv(service: dict) -> list[str]:
    cmd = service.get("command")
    return shlex.split(interpolate(cmd)) if isinstance(cmd, str) else [interpolate(c) for c in cmd or []]


@pytest.fixture(scope="module")
def compose() -> dict:
    return load("docker-compose.yml")


@pytest.fixture(scope="module")
def cpu_override() -> dict:
    return load("docker-compose.cpu.yml")


def check_command(args: list[str]) -> None:
    """Parse a service's command with the real CLI it names; raise if it would be rejected."""
    prog, rest = args[0], args[1:]
    if prog == "basin":
        from study.cli import build_parser

        try:
            ns = build_parser().parse_args(rest)
        except SystemExit as exc:  # argparse rejects with SystemExit(2)
            raise AssertionError(f"basin rejects {args}") from exc
        assert getattr(ns, "func", None), f"{args} names no basin command"
        if ns.command == "sweep":
            assert (ROOT / ns.spec).is_file(), f"{ns.spec} does not exist"
    elif prog == "ray":
        from ray.scripts.scripts import cli

        cli.make_context("ray", list(rest))  # click raises UsageError on an unknown command or option
    elif prog == "gunicorn":
        target = next(a for a in rest if not a.startswith("-"))
        module, attr = target.split(":")
        app = getattr(importlib.import_module(module), attr)
        assert callable(app), f"{target} is not a WSGI callable"
    else:
        raise AssertionError(f"unexpected program {prog!r} in {args}")


def test_services_exist(compose):
    assert {"postgres", "ray-head", "ray-worker", "dashboard", "sweep"} <= set(compose["services"])


@pytest.mark.parametrize("name", ["ray-head", "ray-worker", "dashboard", "sweep"])
def test_every_command_parses_with_the_real_cli(compose, name):
    check_command(argv(compose["services"][name]))


def test_cpu_override_commands_parse_and_drop_the_gpu_reservation(cpu_override):
    for service in cpu_override["services"].values():
        if "command" in service:
            check_command(argv(service))
    worker = cpu_override["services"]["ray-worker"]
    assert worker["deploy"]["resources"]["reservations"]["devices"] == []
    assert "--num-gpus=0" in argv(worker)


def _names_read_by(paths: list[Path]) -> str:
    return "\n".join(p.read_text(errors="ignore") for root in paths for p in root.rglob("*.py"))


def test_environment_variables_are_ones_the_code_reads(compose):
    ours = _names_read_by([ROOT / p for p in OUR_PACKAGES])
    import ray

    rays = _names_read_by([Path(ray.__file__).parent / "_private", Path(ray.__file__).parent / "tune"])
    for name, service in compose["services"].items():
        for key in service.get("environment", {}) or {}:
            if name == "postgres":
                assert key.startswith("POSTGRES_"), key  # the postgres image's own variables
            else:
                assert f'"{key}"' in ours or f'"{key}"' in rays, f"{name}: nothing reads {key}"
    assert '"BASIN_STORAGE"' in ours and '"RAY_ADDRESS"' in ours


def test_storage_and_ray_wiring(compose):
    services = compose["services"]
    for name in ("dashboard", "sweep"):
        url = interpolate(services[name]["environment"]["BASIN_STORAGE"])
        assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
        db = url.rsplit("/", 1)[1]
        assert db == services["postgres"]["environment"]["POSTGRES_DB"]
    head_port = next(a.split("=")[1] for a in argv(services["ray-head"]) if a.startswith("--port="))
    assert f"--address=ray-head:{head_port}" in argv(services["ray-worker"])
    assert services["sweep"]["environment"]["RAY_ADDRESS"] == f"ray-head:{head_port}"
    # one secret for every Ray process (head, workers, driver)
    for name in ("ray-head", "ray-worker", "sweep"):
        env = services[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token"
        secret = env["RAY_AUTH_TOKEN_PATH"].removeprefix("/run/secrets/")
        assert secret in services[name]["secrets"] and secret in compose["secrets"]


def test_images_volumes_and_dependencies_are_consistent(compose):
    services = compose["services"]
    built = {s["image"] for s in services.values() if "build" in s}
    assert built == {"basin:latest"}
    assert (ROOT / "Dockerfile").is_file()
    for name, service in services.items():
        for vol in service.get("volumes", []):
            source = interpolate(vol).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck for {name}"
    worker = services["ray-worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale ray-worker=N must work
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "replicas" in worker["deploy"]
    for name in ("ray-head", "ray-worker"):
        assert services[name]["shm_size"]
        assert any(v.endswith(":/data:ro") for v in services[name]["volumes"])
    assert services["sweep"]["profiles"] == ["sweep"]  # `up` does not start a sweep by itself
    assert "127.0.0.1" not in services["dashboard"]["command"]  # in a container it must listen on all interfaces


def test_dockerfile_copies_every_package_of_pyproject():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for pkg in packages:
        assert re.search(rf"^COPY {pkg} {pkg}$", dockerfile, re.M), pkg
    assert re.search(r"^FROM ", dockerfile, re.M)
