"""The cluster deployment files, checked as far as this machine can (no Docker daemon, no Helm,
no Kubernetes here; docs/deployment.md says what is only documented):

- deploy/Dockerfile parses with Docker's own parser (BuildKit's, through `dockerfile`); it
  starts from python:3.11-slim, installs with constraints.txt, runs as a user without
  privileges; what it copies exists and .dockerignore keeps it; its dependency one-liner yields
  pyproject's dependencies; and its CMD, run here, serves the heatsync code location over gRPC.
- deploy/docker/dagster.yaml passes Dagster's instance config validation, builds a real
  DockerRunLauncher (dagster-docker) on PostgreSQL, and keeps deploy/dagster.yaml's blocks.
- deploy/helm/values.yaml uses only keys of the chart's values schema (a model of the parts it
  sets, written from the chart's values.schema.json), names the code location as
  workspace.yaml does, and its instance blocks pass Dagster's validation with what the chart
  renders around them, with deploy/dagster.yaml's limits.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from deploy.serve import DEPLOY_YAML, ROOT
from tests.deploy.backfill_rig import free_port

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DOCKER_YAML = ROOT / "deploy" / "docker" / "dagster.yaml"
HELM_VALUES = ROOT / "deploy" / "helm" / "values.yaml"
WORKSPACE = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"][0]["python_module"]
PRODUCTION = yaml.safe_load(DEPLOY_YAML.read_text())
# The instance blocks every deployment shares with deploy/dagster.yaml.
SHARED_BLOCKS = ("run_coordinator", "concurrency", "run_monitoring", "run_retries", "telemetry")


# ---- deploy/Dockerfile ----------------------------------------------------------------------
def _instructions() -> list[Any]:
    import dockerfile

    return list(dockerfile.parse_file(str(DOCKERFILE)))


def _one(name: str) -> Any:
    found = [i for i in _instructions() if i.cmd == name]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's patterns (as Docker reads them: later lines win, ! re-includes)
    leave `path` out of the build context."""
    out = False
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        bare = pattern.lstrip("!").rstrip("/").removeprefix("**/")
        if any(fnmatch.fnmatch(p, bare) or fnmatch.fnmatch(Path(p).name, bare) for p in prefixes):
            out = not negate
    return out


def _ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_dockerfile_parses_and_builds_from_the_pinned_slim_python_as_a_plain_user() -> None:
    commands = [i.cmd for i in _instructions()]
    assert commands[0] == "FROM"
    assert _one("FROM").value == ("python:3.11-slim",)
    runs = " ".join(" ".join(i.value) for i in _instructions() if i.cmd == "RUN")
    installs = [c for c in runs.split("&&") if "pip install" in c]
    assert installs and all("-c constraints.txt" in c for c in installs), installs
    user = _one("USER").value[0]
    assert user not in {"root", "0"}, user
    assert commands.index("USER") > max(i for i, c in enumerate(commands) if c == "RUN")
    assert _one("EXPOSE").value == ("4000",)


def test_what_the_dockerfile_copies_exists_and_the_build_context_keeps_it() -> None:
    patterns = _ignore_patterns()
    copied = [src for i in _instructions() if i.cmd == "COPY" for src in i.value[:-1]]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not _ignored(source.rstrip("/"), patterns), f"{source} is in .dockerignore"
    # Every package the wheel is built from is copied in.
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert {f"{p}/" for p in packages} <= set(copied)
    # Secrets and local state stay out of the context.
    for private in (".env", ".git", ".venv", ".heatsync", "portals.yaml", "tests"):
        assert _ignored(private, patterns), private
    assert not _ignored(".env.example", patterns)


def test_the_dockerfiles_dependency_line_lists_pyprojects_dependencies(tmp_path: Path) -> None:
    """The RUN that installs the dependencies before the code, run by a shell as Docker runs
    it, here against a copy of pyproject.toml."""
    run = next(i for i in _instructions() if i.cmd == "RUN" and "tomllib" in i.value[0])
    extract = run.value[0].split("&&")[0]
    assert "> /tmp/requirements.txt" in extract
    command = extract.replace("/tmp/requirements.txt", str(tmp_path / "requirements.txt"))
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shell = shutil.which("sh") or "/bin/sh"
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run([shell, "-c", command], cwd=tmp_path, env=environment, check=True)
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = (tmp_path / "requirements.txt").read_text().split("\n")
    assert [line for line in listed if line] == project["project"]["dependencies"]


def test_the_dockerfiles_command_serves_the_code_location(tmp_path: Path) -> None:
    """The CMD as the image runs it, with the image's paths replaced by this checkout's and its
    port by a free one: a gRPC code server of the heatsync location with the daily job."""
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin

    command = _one("CMD")
    assert command.json, "CMD in exec form (signals reach dagster, not a shell)"
    args = list(command.value)
    assert args[:3] == ["dagster", "code-server", "start"]
    options = dict(zip(args[3::2], args[4::2], strict=True))
    assert options["--module-name"] == WORKSPACE["module_name"]
    assert options["--location-name"] == WORKSPACE["location_name"]
    assert options["--port"] == _one("EXPOSE").value[0]
    assert options["--host"] == "0.0.0.0"
    assert options["--working-directory"] == _one("WORKDIR").value[0]

    port = free_port()
    options.update({"--host": "127.0.0.1", "--port": str(port), "--working-directory": str(ROOT)})
    local = [str(Path(sys.executable).parent / "dagster"), *args[1:3]]
    local += [part for pair in options.items() for part in pair]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HUBSPOT_", "AMOCRM_"))},
        "HEATSYNC_HOME": str(tmp_path / "home"),
        "HEATSYNC_PORTALS": "",
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    (tmp_path / "dagster").mkdir()
    log = tmp_path / "code-server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            local, cwd=tmp_path, env=environment, stdout=out, stderr=out, start_new_session=True
        )
    try:
        origin = GrpcServerCodeLocationOrigin(
            host="127.0.0.1", port=port, location_name=WORKSPACE["location_name"]
        )
        deadline = time.monotonic() + 180
        jobs: set[str] = set()
        with dg.instance_for_test() as instance:
            while not jobs:
                assert server.poll() is None, log.read_text(errors="replace")[-3000:]
                try:
                    with origin.create_location(instance) as location:
                        jobs = {
                            job.name
                            for repository in location.get_repositories().values()
                            for job in repository.get_all_jobs()
                        }
                except Exception as exc:  # not listening yet, or still loading the code
                    assert time.monotonic() < deadline, f"no code location in 180 s: {exc}"
                    time.sleep(1)
        assert "daily_scoring" in jobs, jobs
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# ---- deploy/docker/dagster.yaml -------------------------------------------------------------
def _docker_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(DOCKER_YAML.read_text())
    return config


def test_the_docker_instance_keeps_the_production_blocks() -> None:
    docker = _docker_config()
    for block in (*SHARED_BLOCKS, "storage"):
        assert docker[block] == PRODUCTION[block], block
    added = {"run_launcher", "compute_logs", "local_artifact_storage"}
    assert set(docker) - set(PRODUCTION) == added
    # Step logs on the volume the image's user may write to, and that run containers mount.
    volumes = docker["run_launcher"]["config"]["container_kwargs"]["volumes"]
    home = next(v.split(":")[1] for v in volumes if v.startswith("heatsync-home:"))
    for block in ("compute_logs", "local_artifact_storage"):
        assert docker[block]["config"]["base_dir"].startswith(home + "/"), block


def test_the_docker_instance_passes_dagsters_validation_without_a_docker_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_docker import DockerRunLauncher

    shutil.copyfile(DOCKER_YAML, tmp_path / "dagster.yaml")
    validated, _ = dagster_instance_config(str(tmp_path))
    launcher = validated["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    monkeypatch.setenv("HEATSYNC_IMAGE", "registry.example.com/heatsync:0.1.0")
    processed = process_config(DockerRunLauncher.config_type(), launcher["config"])
    assert processed.success and processed.value is not None, processed.errors
    built = DockerRunLauncher(**processed.value)  # validate_docker_config's rules too
    assert built.image == "registry.example.com/heatsync:0.1.0"
    assert built.networks == ["heatsync"]


def test_the_docker_launcher_passes_every_variable_a_run_needs() -> None:
    env_vars = _docker_config()["run_launcher"]["config"]["env_vars"]
    assert len(env_vars) == len(set(env_vars))
    assert {"HEATSYNC_POSTGRES_URL", "HEATSYNC_PORTALS"} <= set(env_vars)
    assert not [v for v in env_vars if "=" in v], "values belong in the environment, not here"
    # The example portals file's credential variables, as its comment promises.
    example = yaml.safe_load((ROOT / "portals.example.yaml").read_text())
    named = {name for p in example["portals"] for name in p.get("credentials", {}).values()}
    assert named <= set(env_vars), named - set(env_vars)


def test_the_docker_instance_runs_on_postgres_with_the_docker_run_launcher(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_docker import DockerRunLauncher

    shutil.copyfile(DOCKER_YAML, tmp_path / "dagster.yaml")
    monkeypatch.setenv("HEATSYNC_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("HEATSYNC_IMAGE", "registry.example.com/heatsync:0.1.0")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, DockerRunLauncher)
        # Run monitoring asks this launcher about a started run's container (the default
        # launcher cannot: test_run_monitoring.py).
        assert launcher.supports_check_run_worker_health
        assert instance.run_monitoring_enabled
        assert (
            instance.run_retries_enabled and not instance.run_retries_retry_on_asset_or_op_failure
        )
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 8
        keys = {limit["key"] for limit in queue.tag_concurrency_limits}
        assert {"dagster/partition/portal", "heatsync/portal"} <= keys


def test_the_docker_webserver_image_adds_the_launcher_and_the_instance_to_heatsyncs() -> None:
    import dockerfile

    steps = list(dockerfile.parse_file(str(ROOT / "deploy" / "docker" / "Dockerfile")))
    copied = [src for i in steps if i.cmd == "COPY" for src in i.value[:-1]]
    assert set(copied) == {"deploy/docker/dagster.yaml", "deploy/docker/workspace.yaml"}
    assert not [c for c in copied if _ignored(c, _ignore_patterns())]
    runs = [i.value[0] for i in steps if i.cmd == "RUN"]
    assert runs == ["pip install -c constraints.txt dagster-docker"]
    assert [i.value[0] for i in steps if i.cmd == "USER"][-1] == _one("USER").value[0]
    workspace = yaml.safe_load((ROOT / "deploy" / "docker" / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert server["location_name"] == WORKSPACE["location_name"]
    assert str(server["port"]) == _one("EXPOSE").value[0]


# ---- deploy/helm/values.yaml ----------------------------------------------------------------
# A model of the parts of the chart's values.schema.json that heatsync's values set (read from
# dagster-io/dagster's helm/dagster/values.schema.json; names and nesting as there). Unknown keys
# are refused where the chart's schema refuses them (additionalProperties: false), and here also
# where it does not, so that a misspelt key fails this test instead of being ignored by Helm.
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Image(_Strict):
    repository: str
    tag: str
    pullPolicy: Literal["Always", "IfNotPresent", "Never"]


class _IncludeConfig(_Strict):
    enabled: bool


class _SecretRef(_Strict):
    name: str
    optional: bool = False


class _UserDeployment(_Strict):
    name: str
    image: _Image
    dagsterApiGrpcArgs: list[str]
    port: int
    includeConfigInLaunchedRuns: _IncludeConfig
    env: dict[str, str]
    envSecrets: list[_SecretRef]
    volumes: list[dict[str, Any]]
    volumeMounts: list[dict[str, Any]]
    podSecurityContext: dict[str, Any]
    securityContext: dict[str, Any]
    resources: dict[str, Any]


class _UserDeployments(_Strict):
    enabled: bool
    deployments: list[_UserDeployment]


class _PostgreSQLService(_Strict):
    port: int


class _PostgreSQL(_Strict):
    enabled: bool
    postgresqlHost: str
    postgresqlUsername: str
    postgresqlDatabase: str
    postgresqlParams: dict[str, Any]
    service: _PostgreSQLService


class _Global(_Strict):
    postgresqlSecretName: str


class _K8sRunLauncherConfig(_Strict):
    loadInclusterConfig: bool
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"]
    envConfigMaps: list[dict[str, Any]]
    envSecrets: list[dict[str, Any]]
    envVars: list[str]
    volumeMounts: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    runK8sConfig: dict[Literal["containerConfig", "podSpecConfig", "jobSpecConfig"], Any]


class _RunLauncherConfig(_Strict):
    k8sRunLauncher: _K8sRunLauncherConfig


class _RunLauncher(_Strict):
    type: Literal["K8sRunLauncher"]
    config: _RunLauncherConfig


class _QueuedConfig(_Strict):
    queuedRunCoordinator: dict[str, Any]


class _RunCoordinator(_Strict):
    enabled: bool
    type: Literal["QueuedRunCoordinator"]
    config: _QueuedConfig


class _Toggle(_Strict):
    enabled: bool


class _Daemon(_Strict):
    enabled: bool
    runCoordinator: _RunCoordinator
    runMonitoring: _Toggle
    runRetries: _Toggle


class _HelmValues(_Strict):
    postgresql: _PostgreSQL
    generatePostgresqlPasswordSecret: bool
    global_: _Global
    user_deployments: _UserDeployments
    runLauncher: _RunLauncher
    dagsterDaemon: _Daemon
    additionalInstanceConfig: dict[str, Any]
    telemetry: _Toggle


def _helm() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(HELM_VALUES.read_text())
    return values


def _helm_model() -> _HelmValues:
    values = dict(_helm())
    values["global_"] = values.pop("global")
    values["user_deployments"] = values.pop("dagster-user-deployments")
    return _HelmValues.model_validate(values)


def test_the_helm_values_use_only_the_charts_keys() -> None:
    model = _helm_model()
    assert not model.postgresql.enabled and not model.generatePostgresqlPasswordSecret
    assert model.user_deployments.enabled and len(model.user_deployments.deployments) == 1
    # runMonitoring/runRetries off in the chart's keys, on in additionalInstanceConfig.
    assert not model.dagsterDaemon.runMonitoring.enabled
    assert model.additionalInstanceConfig["run_monitoring"]["enabled"]


def test_the_helm_code_location_is_the_workspaces_and_the_images() -> None:
    deployment = _helm_model().user_deployments.deployments[0]
    assert deployment.name == WORKSPACE["location_name"]
    grpc_args = deployment.dagsterApiGrpcArgs
    args = dict(zip(grpc_args[::2], grpc_args[1::2], strict=True))
    assert args["--module-name"] == WORKSPACE["module_name"]
    assert args["--working-directory"] == _one("WORKDIR").value[0]
    assert str(deployment.port) == _one("EXPOSE").value[0]
    assert deployment.podSecurityContext["runAsUser"] == int(_one("USER").value[0])
    # The portals file is where a mounted volume puts it.
    portals = Path(deployment.env["HEATSYNC_PORTALS"])
    mounts = {Path(m["mountPath"]) for m in deployment.volumeMounts}
    assert portals.parent in mounts
    # No secret in the file: what looks like one comes from a Kubernetes secret.
    for name in deployment.env:
        assert not any(word in name for word in ("TOKEN", "SECRET", "PASSWORD", "KEY_ID")), name
    assert deployment.env["HEATSYNC_STORE_URI"].startswith("s3://")


def _rendered_run_coordinator(values: dict[str, Any]) -> dict[str, Any]:
    """run_coordinator as the chart's template renders it from dagsterDaemon.runCoordinator."""
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    names = {
        "maxConcurrentRuns": "max_concurrent_runs",
        "tagConcurrencyLimits": "tag_concurrency_limits",
        "dequeueIntervalSeconds": "dequeue_interval_seconds",
    }
    config = {names[key]: value for key, value in queued.items() if value}
    coordinator = {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}
    return {**coordinator, "config": config} if config else coordinator


def test_the_helm_instance_passes_dagsters_validation_with_the_production_limits(
    tmp_path: Path,
) -> None:
    """The dagster.yaml the chart renders, as far as heatsync's values shape it: PostgreSQL
    storage, the queued coordinator with an empty config, the K8s run launcher, and the
    additionalInstanceConfig blocks appended. Dagster validates it as its processes will."""
    from dagster._core.instance.config import dagster_instance_config

    values = _helm()
    extra = values["additionalInstanceConfig"]
    postgres = {
        "postgres_db": {
            "hostname": values["postgresql"]["postgresqlHost"],
            "username": values["postgresql"]["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "db_name": values["postgresql"]["postgresqlDatabase"],
            "port": values["postgresql"]["service"]["port"],
            "params": values["postgresql"]["postgresqlParams"],
        }
    }
    rendered = {
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": postgres,
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": postgres,
        },
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": postgres,
        },
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": {}},
        "run_coordinator": _rendered_run_coordinator(values),
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    assert not set(rendered) & set(extra), "a block the chart renders is repeated"
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({**rendered, **extra}))
    validated, _ = dagster_instance_config(str(tmp_path))

    for block in ("concurrency", "run_retries"):
        assert validated[block] == PRODUCTION[block], block
    monitoring = dict(validated["run_monitoring"])
    # A pod may wait for a node and an image: the start timeout alone differs.
    assert (
        monitoring.pop("start_timeout_seconds")
        >= PRODUCTION["run_monitoring"]["start_timeout_seconds"]
    )
    expected = {
        k: v for k, v in PRODUCTION["run_monitoring"].items() if k != "start_timeout_seconds"
    }
    assert {k: monitoring[k] for k in expected} == expected


def test_the_docs_name_the_files_and_commands_that_exist() -> None:
    """docs/deployment.md's commands point at these files and at the pinned Dagster version."""
    docs = (ROOT / "docs" / "deployment.md").read_text()
    pinned = next(
        line.split("==")[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith("dagster==")
    )
    assert f"--version {pinned}" in docs
    assert f"--version {pinned}" in HELM_VALUES.read_text()
    for path in ("deploy/Dockerfile", "deploy/helm/values.yaml", "deploy/docker/dagster.yaml"):
        assert path in docs and (ROOT / path).is_file(), path
    build = next(line for line in docs.splitlines() if line.strip().startswith("docker build"))
    assert "-f deploy/Dockerfile" in shlex.join(shlex.split(build))
