"""The Compose stack: pinned images, existing paths, documented variables and real settings.

These tests read docker-compose.yml, deploy/.env.example and the Temporal dynamic config as
files. They start no container, so they also run on machines without Docker.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from pydantic import TypeAdapter

from api.auth import AuthSettings
from videoq.binaries import DEV_SERVER_DYNAMIC_CONFIG, FAIRNESS_DYNAMIC_CONFIG
from videoq.settings import Settings

yaml = pytest.importorskip(
    "yaml", reason="PyYAML is missing; it comes with the test extra: pip install -e '.[test]'"
)

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "deploy" / ".env.example"
DYNAMIC_CONFIG_PATH_VARIABLE = "DYNAMIC_CONFIG_FILE_PATH"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message} and $NAME. $$ is a literal $.
BRACED_VARIABLE = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}"
)
BARE_VARIABLE = re.compile(r"(?<!\$)\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")
# A version tag: digits and dots, optionally followed by a variant such as -bookworm.
VERSION_TAG = re.compile(r"^\d+(\.\d+)+(-[a-z0-9][a-z0-9.]*)?$")
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET")
SETTINGS_ENV_NAMES = {f"VIDEOQ_{name.upper()}" for name in Settings.model_fields}
# VIDEOQ_JWT_SECRET and VIDEOQ_JWT_AUDIENCE are read by the API's AuthSettings.
AUTH_ENV_NAMES = {f"VIDEOQ_{name.upper()}" for name in AuthSettings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    """Read the variables of deploy/.env.example, without single quotes around a value."""
    variables = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        assert separator, f"deploy/.env.example: line without '=': {line!r}"
        variables[name] = value.strip("'")
    return variables


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """Return a service's environment as a mapping, from either the mapping or the list form."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(entry.split("=", 1) for entry in environment)
    return {name: str(value) for name, value in environment.items()}


def argv_of(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def one_shot_services(services: dict[str, dict[str, Any]]) -> set[str]:
    """Return the services that others wait for with ``service_completed_successfully``."""
    names = set()
    for service in services.values():
        depends_on = service.get("depends_on") or {}
        if isinstance(depends_on, dict):
            for name, rule in depends_on.items():
                if (rule or {}).get("condition") == "service_completed_successfully":
                    names.add(name)
    return names


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """Return ``(source, target)`` of each volume whose source is a path in the repository."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def strings_in(node: Any) -> list[str]:
    """Collect every string value of a loaded YAML document, which is what Compose interpolates."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for value in node.values() for text in strings_in(value)]
    if isinstance(node, list):
        return [text for item in node for text in strings_in(item)]
    return []


def dynamic_config_file(services: dict[str, dict[str, Any]]) -> Path:
    """Return the repository file that the temporal service reads as its dynamic config."""
    environment = environment_of(services["temporal"])
    container_path = PurePosixPath(environment[DYNAMIC_CONFIG_PATH_VARIABLE])
    for source, target in bind_mounts(services["temporal"]):
        if container_path.is_relative_to(target):
            return REPO / source / container_path.relative_to(target)
    raise AssertionError(f"no volume of the temporal service contains {container_path}")


def dev_server_values(values: tuple[str, ...]) -> dict[str, Any]:
    """Parse the ``key=value`` flags of videoq.binaries into a mapping of JSON-decoded values."""
    return {key: json.loads(value) for key, value in (item.split("=", 1) for item in values)}


def test_compose_file_parses(compose):
    assert isinstance(compose["services"], dict)
    assert compose["services"]


def test_compose_images_pinned_to_versions(services):
    for name, service in services.items():
        if "build" in service:
            continue
        image = service.get("image", "")
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} uses latest"
        assert VERSION_TAG.match(tag), f"{name}: tag {tag!r} of {image!r} is not a version"


def test_compose_admin_tools_match_server_version(services):
    server_tag = services["temporal"]["image"].rpartition(":")[2]
    for name, service in services.items():
        image = service.get("image", "")
        if image.startswith("temporalio/admin-tools:"):
            # The schema that admin-tools installs must be the one the server expects.
            assert image.rpartition(":")[2] == server_tag, f"{name}: {image} vs server {server_tag}"


def test_compose_mounted_paths_exist(services):
    for name, service in services.items():
        for source, _ in bind_mounts(service):
            assert (REPO / source).exists(), f"{name}: mounted path {source} does not exist"


def test_compose_build_context_exists(services):
    for name, service in services.items():
        build = service.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = build.get("context", ".")
        dockerfile = build.get("dockerfile", "Dockerfile")
        assert (REPO / context).is_dir(), f"{name}: build context {context} does not exist"
        assert (REPO / context / dockerfile).is_file(), f"{name}: {dockerfile} does not exist"


def test_compose_variables_documented(compose, env_example):
    used = set()
    for text in strings_in(compose):
        used |= {match["name"] for match in BRACED_VARIABLE.finditer(text)}
        used |= {match["name"] for match in BARE_VARIABLE.finditer(text)}
    assert used, "docker-compose.yml uses no variables"
    undocumented = sorted(used - env_example.keys())
    assert not undocumented, f"not in deploy/.env.example: {undocumented}"


def test_compose_secrets_come_from_env_file(services):
    for name, service in services.items():
        for variable, value in environment_of(service).items():
            if not SECRET_NAME.search(variable):
                continue
            match = BRACED_VARIABLE.fullmatch(value)
            assert match, f"{name}: {variable} is hard-coded; use ${{NAME:?message}}"
            assert match["operator"] == ":?", f"{name}: {variable} must fail when unset"


def test_compose_videoq_variables_are_settings(services):
    for name, service in services.items():
        for variable in environment_of(service):
            if variable.startswith("VIDEOQ_"):
                assert variable in SETTINGS_ENV_NAMES | AUTH_ENV_NAMES, (
                    f"{name}: {variable} is not a field of Settings or AuthSettings"
                )


def test_compose_env_example_settings_exist(env_example):
    unknown = sorted(
        name
        for name in env_example
        if name.startswith("VIDEOQ_") and name not in SETTINGS_ENV_NAMES | AUTH_ENV_NAMES
    )
    assert not unknown, f"deploy/.env.example sets unknown settings: {unknown}"


def test_compose_defaults_match_settings(services):
    checked = 0
    for name, service in services.items():
        for variable, value in environment_of(service).items():
            match = BRACED_VARIABLE.fullmatch(value)
            if not match or match["name"] != variable or match["operator"] != ":-":
                continue
            if variable not in SETTINGS_ENV_NAMES:
                continue
            field = Settings.model_fields[variable.removeprefix("VIDEOQ_").lower()]
            parsed = TypeAdapter(field.annotation).validate_python(match["argument"])
            assert parsed == field.default, (
                f"{name}: {variable} defaults to {match['argument']!r}, "
                f"Settings to {field.default!r}"
            )
            checked += 1
    assert checked, "no ${VIDEOQ_...:-default} found"


def test_compose_env_example_values_are_valid(env_example, monkeypatch):
    for variable in SETTINGS_ENV_NAMES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env_example.items():
        if variable in SETTINGS_ENV_NAMES and value:
            monkeypatch.setenv(variable, value)
    Settings()


def test_compose_api_port_matches_settings(services):
    api = services["api"]
    default_port = Settings.model_fields["api_port"].default
    argv = argv_of(api["command"])
    assert argv[:2] == ["videoq", "api"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    if "--port" in argv:
        assert int(argv[argv.index("--port") + 1]) == default_port
    assert int(environment_of(api).get("VIDEOQ_API_PORT", default_port)) == default_port

    container_ports = [int(str(mapping).rsplit(":", 1)[1]) for mapping in api["ports"]]
    assert container_ports == [default_port]
    assert f"127.0.0.1:{default_port}/" in " ".join(argv_of(api["healthcheck"]["test"]))


def test_compose_dynamic_config_one_partition(services):
    config = yaml.safe_load(dynamic_config_file(services).read_text(encoding="utf-8"))
    for key in ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions"):
        # One unconstrained value, so that every task queue has one partition.
        assert config[key] == [{"value": 1}], f"{key} is {config[key]!r}"


def test_compose_dynamic_config_matches_dev_server(services):
    config = yaml.safe_load(dynamic_config_file(services).read_text(encoding="utf-8"))
    for key, value in dev_server_values(DEV_SERVER_DYNAMIC_CONFIG).items():
        assert config[key] == [{"value": value}], f"{key}: {config[key]!r}, dev server {value!r}"
    assert "matching.enableFairness" in config


def test_compose_fairness_agrees_with_env_example(services, env_example):
    config = yaml.safe_load(dynamic_config_file(services).read_text(encoding="utf-8"))
    fairness_on = config["matching.enableFairness"] == [
        {"value": value} for value in dev_server_values(FAIRNESS_DYNAMIC_CONFIG).values()
    ]
    assert fairness_on == (env_example["VIDEOQ_FAIRNESS"] == "user")


def test_compose_services_have_healthchecks(services):
    one_shots = one_shot_services(services)
    for name, service in services.items():
        if name in one_shots:
            continue
        healthcheck = service.get("healthcheck") or {}
        assert healthcheck.get("test"), f"{name} runs until stopped but has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"


def test_compose_worker_scales(services):
    worker = services["worker"]
    assert "container_name" not in worker
    assert "hostname" not in worker
    assert not worker.get("ports"), "a fixed host port allows only one worker per host"


def test_compose_worker_roles_cover_queues(services):
    roles = {
        name: environment_of(service).get("VIDEOQ_WORKER_ROLE", "all")
        for name, service in services.items()
        if "worker" in argv_of(service.get("command", []))
    }
    assert roles == {"workflow-worker": "workflows", "worker": "renders"}
    for role in roles.values():
        Settings(worker_role=role)  # each value is one the settings accept


def test_compose_setup_runs_first(services):
    assert "setup" in one_shot_services(services)
    for name in ("api", "workflow-worker", "worker"):
        rule = services[name]["depends_on"]["setup"]
        assert rule["condition"] == "service_completed_successfully", name

    command = " ".join(argv_of(services["setup"]["command"]))
    assert "videoq migrate" in command
    assert "videoq setup" in command


def test_compose_videos_volume_shared(services):
    targets = {}
    for name in ("api", "worker"):
        output_dir = environment_of(services[name])["VIDEOQ_OUTPUT_DIR"]
        mounts = {
            target: source
            for source, target in (volume.split(":")[:2] for volume in services[name]["volumes"])
        }
        assert output_dir in mounts, f"{name}: nothing is mounted at {output_dir}"
        targets[name] = mounts[output_dir]
    assert targets["api"] == targets["worker"], targets


def test_compose_postgres_volume_path(services):
    postgresql = services["postgresql"]
    major = int(postgresql["image"].rpartition(":")[2].split(".")[0])
    targets = [volume.split(":")[1] for volume in postgresql["volumes"]]
    # The postgres image declares /var/lib/postgresql as its volume from 18 on, and
    # /var/lib/postgresql/data before.
    expected = "/var/lib/postgresql" if major >= 18 else "/var/lib/postgresql/data"
    assert expected in targets, f"postgres {major} keeps its data under {expected}: {targets}"
