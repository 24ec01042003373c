"""Static checks of the collector configs, the compose stack and the Grafana dashboard.

There is no collector or Docker in the test environment, so these tests check what a typo would break:
every pipeline component is defined, connectors are wired on both sides, no secret is written in a file,
the sampling policies and dimensions use the attribute names the instrumentation emits, mounted files
exist, and the dashboard only queries series and attributes that something actually produces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

from otel_agent_trace import semconv  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SINGLE = ROOT / "collector-config.yaml"
SCALE = ROOT / "collector-config.scale.yaml"
COMPOSE = DEPLOY / "docker-compose.yaml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "agent-trace.json"

SECTIONS = ("receivers", "processors", "exporters", "connectors", "extensions")
SIGNALS = ("traces", "metrics", "logs")
ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Every string constant the instrumentation defines as an attribute, event or metric name.
EMITTED_NAMES = frozenset(
    value for name, value in vars(semconv).items() if name.isupper() and isinstance(value, str)
)


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def _single() -> dict[str, Any]:
    (config,) = _load_all(SINGLE)
    return config


def _tiers() -> tuple[dict[str, Any], dict[str, Any]]:
    tier1, tier2 = _load_all(SCALE)
    return tier1, tier2


def _all_configs() -> list[tuple[str, dict[str, Any]]]:
    tier1, tier2 = _tiers()
    return [("single", _single()), ("tier1", tier1), ("tier2", tier2)]


CONFIG_IDS = ["single", "tier1", "tier2"]


@pytest.fixture(params=range(3), ids=CONFIG_IDS)
def config(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _all_configs()[request.param][1]


def _type_of(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def _env_default(value: Any) -> Any:
    """The value a ``${env:X:-default}`` setting takes when X is unset (the collector parses it as YAML)."""
    if isinstance(value, str) and (match := ENV_REFERENCE.fullmatch(value)):
        return yaml.safe_load(match.group(2)) if match.group(2) is not None else None
    return value


def _pipelines(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    return config["service"]["pipelines"]


def _processors_named(config: dict[str, Any], type_name: str) -> list[dict[str, Any]]:
    return [body or {} for cid, body in config.get("processors", {}).items() if _type_of(cid) == type_name]


# --- collector: structure --------------------------------------------------------------------------------
class TestCollectorStructure:
    def test_component_ids_are_type_or_type_slash_name(self, config: dict[str, Any]) -> None:
        """Every component id is `type` or `type/name` with a lower-case type."""
        for section in SECTIONS:
            for component_id in config.get(section) or {}:
                assert re.fullmatch(r"[a-z][a-z0-9_]*(/[A-Za-z0-9_.-]+)?", component_id), component_id

    def test_pipeline_names_are_signal_or_signal_slash_name(self, config: dict[str, Any]) -> None:
        """Pipelines are named traces|metrics|logs, optionally with a /name."""
        for name in _pipelines(config):
            assert _type_of(name) in SIGNALS, name

    def test_every_pipeline_has_receivers_and_exporters(self, config: dict[str, Any]) -> None:
        """A pipeline without a receiver or an exporter makes the collector refuse to start."""
        for name, pipeline in _pipelines(config).items():
            assert pipeline.get("receivers"), name
            assert pipeline.get("exporters"), name

    def test_every_referenced_component_is_defined(self, config: dict[str, Any]) -> None:
        """Receivers, processors and exporters named in pipelines exist (as themselves or as connectors)."""
        connectors = set(config.get("connectors") or {})
        for name, pipeline in _pipelines(config).items():
            for role in ("receivers", "processors", "exporters"):
                defined = set(config.get(role) or {})
                if role != "processors":
                    defined |= connectors
                for component_id in pipeline.get(role, []):
                    assert component_id in defined, f"{name}: {role} {component_id!r} is not defined"
        for extension in config["service"].get("extensions", []):
            assert extension in (config.get("extensions") or {}), extension

    def test_every_defined_component_is_used(self, config: dict[str, Any]) -> None:
        """Nothing is configured and then forgotten (the collector silently ignores unused components)."""
        used = {
            component_id
            for pipeline in _pipelines(config).values()
            for role in ("receivers", "processors", "exporters")
            for component_id in pipeline.get(role, [])
        }
        used |= set(config["service"].get("extensions", []))
        for section in SECTIONS:
            for component_id in config.get(section) or {}:
                assert component_id in used, f"{section}: {component_id!r} is defined but unused"

    def test_connectors_are_exported_to_and_received_from(self, config: dict[str, Any]) -> None:
        """A connector exports from one pipeline and receives into another, across the right signals."""
        pipelines = _pipelines(config)
        for connector in config.get("connectors") or {}:
            feeding = [name for name, p in pipelines.items() if connector in p.get("exporters", [])]
            fed = [name for name, p in pipelines.items() if connector in p.get("receivers", [])]
            assert feeding and fed, f"connector {connector!r} must be both an exporter and a receiver"
            if _type_of(connector) == "spanmetrics":
                assert {_type_of(name) for name in feeding} == {"traces"}
                assert {_type_of(name) for name in fed} == {"metrics"}

    def test_memory_limiter_runs_first(self, config: dict[str, Any]) -> None:
        """memory_limiter is the first processor of every pipeline that has processors."""
        for name, pipeline in _pipelines(config).items():
            processors = pipeline.get("processors", [])
            if processors:
                assert _type_of(processors[0]) == "memory_limiter", name

    def test_env_references_use_collector_syntax(self, config: dict[str, Any]) -> None:
        """Every ${...} is ${env:NAME} or ${env:NAME:-default}, the collector's own expansion syntax."""
        text = yaml.safe_dump(config)
        for reference in re.findall(r"\$\{[^}]*\}", text):
            assert ENV_REFERENCE.fullmatch(reference), reference

    def test_otlp_receiver_listens_on_standard_ports(self) -> None:
        """Agents reach the single collector and tier 1 on 4317 (gRPC) and 4318 (HTTP)."""
        for config in (_single(), _tiers()[0]):
            protocols = config["receivers"]["otlp"]["protocols"]
            assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
            assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


# --- collector: sampling, span metrics, exporters ----------------------------------------------------------
def _tail_sampling(config: dict[str, Any]) -> dict[str, Any]:
    (tail,) = _processors_named(config, "tail_sampling")
    return tail


class TestSampling:
    @pytest.mark.parametrize("which", ["single", "tier2"])
    def test_policies_keep_errors_findings_and_tool_errors_and_sample_the_rest(self, which: str) -> None:
        """ERROR traces, sessions with findings and failed tool calls are kept; clean ones are sampled."""
        config = _single() if which == "single" else _tiers()[1]
        policies = {policy["type"]: policy for policy in _tail_sampling(config)["policies"]}
        assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
        numeric = policies["numeric_attribute"]["numeric_attribute"]
        assert (numeric["key"], numeric["min_value"]) == (semconv.FINDINGS_COUNT, 1)
        boolean = policies["boolean_attribute"]["boolean_attribute"]
        assert (boolean["key"], boolean["value"]) == (semconv.TOOL_IS_ERROR, True)
        percentage = _env_default(policies["probabilistic"]["probabilistic"]["sampling_percentage"])
        assert 0 < percentage < 100
        events = policies["ottl_condition"]["ottl_condition"]["spanevent"]
        assert any(f'"{semconv.FINDING_EVENT}"' in condition for condition in events)

    def test_decision_waits_for_the_session_root(self) -> None:
        """Decisions follow the root (session) span, with a fallback wait longer than the root delay."""
        tail = _tail_sampling(_single())
        assert tail["decision_wait_after_root_received"]
        assert _env_default(tail["decision_wait"])

    def test_tiers_sample_exactly_like_the_single_collector(self) -> None:
        """Tier 2's tail_sampling block is the single collector's, so the two configs cannot drift."""
        assert _tail_sampling(_tiers()[1]) == _tail_sampling(_single())

    def test_tail_sampling_only_in_traces_pipelines_and_never_before_spanmetrics(self, config) -> None:
        """Span metrics are computed from unsampled spans; tail_sampling sits in traces pipelines only."""
        for name, pipeline in _pipelines(config).items():
            sampled = any(_type_of(p) == "tail_sampling" for p in pipeline.get("processors", []))
            if sampled:
                assert _type_of(name) == "traces"
                assert "spanmetrics" not in pipeline["exporters"], name

    def test_tier1_routes_by_trace_id_to_a_dns_name_from_the_environment(self) -> None:
        """Tier 1 load-balances by trace id to tier-2 instances found by DNS, and does not sample."""
        tier1, _ = _tiers()
        balancer = tier1["exporters"]["loadbalancing"]
        assert balancer["routing_key"] == "traceID"
        assert "otlp" in balancer["protocol"]
        assert ENV_REFERENCE.fullmatch(balancer["resolver"]["dns"]["hostname"])
        assert not _processors_named(tier1, "tail_sampling")
        assert _pipelines(tier1)["traces"]["exporters"] == ["loadbalancing"]


class TestSpanMetrics:
    def test_dimensions_are_attributes_the_instrumentation_emits(self) -> None:
        """Span-metric dimensions exist in semconv.py and include the ones the dashboard groups by."""
        for _, config in _all_configs():
            spanmetrics = (config.get("connectors") or {}).get("spanmetrics")
            if spanmetrics is None:
                continue
            dimensions = [d["name"] for d in spanmetrics["dimensions"]]
            assert set(dimensions) <= EMITTED_NAMES, set(dimensions) - EMITTED_NAMES
            for needed in (
                semconv.REQUEST_MODEL,
                semconv.OPERATION_NAME,
                semconv.STOP_REASON,
                semconv.TOOL_IS_ERROR,
            ):
                assert needed in dimensions
            assert semconv.CONVERSATION_ID not in dimensions  # unbounded cardinality
            event_dimensions = [d["name"] for d in spanmetrics["events"]["dimensions"]]
            assert semconv.FINDING_KIND in event_dimensions
            assert spanmetrics["events"]["enabled"] is True

    def test_tier1_computes_span_metrics_like_the_single_collector(self) -> None:
        """The two-tier variant produces the same metric names and labels as the single collector."""
        assert _tiers()[0]["connectors"]["spanmetrics"] == _single()["connectors"]["spanmetrics"]


class TestExporters:
    @pytest.mark.parametrize("which", ["single", "tier2"])
    def test_trace_backends_are_jaeger_tempo_and_langfuse(self, which: str) -> None:
        """Sampled traces go to Jaeger and Tempo over OTLP/gRPC and to Langfuse over OTLP/HTTP."""
        config = _single() if which == "single" else _tiers()[1]
        assert set(_pipelines(config)["traces"]["exporters"]) == {
            "otlp_grpc/jaeger",
            "otlp_grpc/tempo",
            "otlp_http/langfuse",
        }
        for name in ("otlp_grpc/jaeger", "otlp_grpc/tempo"):
            assert ENV_REFERENCE.fullmatch(config["exporters"][name]["endpoint"])

    @pytest.mark.parametrize("which", ["single", "tier2"])
    def test_langfuse_exporter_uses_the_otel_path_env_auth_and_ingestion_version(self, which: str) -> None:
        """Langfuse: {host}/api/public/otel, Basic auth from ${env:...}, ingestion version 4."""
        config = _single() if which == "single" else _tiers()[1]
        langfuse = config["exporters"]["otlp_http/langfuse"]
        assert langfuse["endpoint"].endswith("/api/public/otel")
        assert langfuse["endpoint"].startswith("${env:LANGFUSE_HOST")
        assert re.fullmatch(r"Basic \$\{env:[A-Z_]+\}", langfuse["headers"]["Authorization"])
        assert langfuse["headers"]["x-langfuse-ingestion-version"] == "4"

    def test_metrics_are_served_to_prometheus(self) -> None:
        """Agent metrics and span metrics end in the prometheus exporter on the port Prometheus scrapes."""
        for config in (_single(), _tiers()[0]):
            metrics = _pipelines(config)["metrics"]
            assert set(metrics["receivers"]) == {"otlp", "spanmetrics"}
            assert metrics["exporters"] == ["prometheus"]
            assert config["exporters"]["prometheus"]["endpoint"].endswith(":8889")


SECRET_PATTERNS = (
    re.compile(r"Basic\s+(?!\$\{env:)[A-Za-z0-9+/=]{8,}"),  # a literal base64 credential
    re.compile(r"\b[ps]k-lf-[A-Za-z0-9-]+"),  # Langfuse keys
    re.compile(r"\blsv2_[A-Za-z0-9_]+"),  # LangSmith keys
    re.compile(r"\bsk-ant-[A-Za-z0-9-]+"),  # Anthropic keys
)
SECRET_HEADER = re.compile(r"authorization|_auth$|api[-_]?key|token|secret|password", re.IGNORECASE)


def _walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in _walk(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [item for index, value in enumerate(node) for item in _walk(value, f"{path}[{index}]")]
    return [(path, node)]


class TestNoSecrets:
    @pytest.mark.parametrize(
        "path",
        [SINGLE, SCALE, COMPOSE, *sorted(DEPLOY.rglob("*.yaml")), DASHBOARD],
        ids=lambda p: str(p.relative_to(ROOT)),
    )
    def test_no_literal_credentials(self, path: Path) -> None:
        """No file holds a literal key or Basic credential; secret-like settings come from the environment."""
        text = path.read_text()
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"{path.name}: {pattern.pattern}"
        documents = [json.loads(text)] if path.suffix == ".json" else _load_all(path)
        for document in documents:
            for key_path, value in _walk(document):
                key = key_path.rsplit(".", 1)[-1]
                if SECRET_HEADER.search(key) and isinstance(value, str) and value:
                    assert "${env:" in value or re.fullmatch(r"\$\{[A-Z_]+(:-)?\}", value), key_path


# --- compose stack ------------------------------------------------------------------------------------------
def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append(((DEPLOY / source).resolve(), target))
    return mounts


class TestCompose:
    def test_services_present(self) -> None:
        """The stack runs a collector, Jaeger, Tempo, Prometheus and Grafana."""
        assert {"otel-collector", "jaeger", "tempo", "prometheus", "grafana"} <= set(_compose()["services"])

    def test_mounted_files_exist_in_the_repository(self) -> None:
        """Every bind-mounted file or directory exists relative to deploy/."""
        for name, service in _compose()["services"].items():
            for source, _ in _bind_mounts(service):
                assert source.exists(), f"{name}: {source} does not exist"
                assert ROOT in source.parents, f"{name}: {source} is outside the repository"

    def test_collector_runs_the_repository_config(self) -> None:
        """The collector mounts ../collector-config.yaml at the path its --config names."""
        collector = _compose()["services"]["otel-collector"]
        mounts = dict(_bind_mounts(collector))
        target = mounts[SINGLE.resolve()]
        assert any(arg == f"--config={target}" for arg in collector["command"])
        assert collector["image"].startswith("otel/opentelemetry-collector-contrib:")

    def test_langfuse_settings_pass_through_from_the_host(self) -> None:
        """LANGFUSE_* come from the shell running compose, never from a value in the file."""
        environment = _compose()["services"]["otel-collector"]["environment"]
        for name in ("LANGFUSE_HOST", "LANGFUSE_AUTH"):
            assert environment[name].startswith("${" + name), name

    def test_collector_defaults_point_at_the_compose_services(self) -> None:
        """Jaeger and Tempo endpoints set in compose name services that exist, on the OTLP/gRPC port."""
        compose = _compose()
        environment = compose["services"]["otel-collector"]["environment"]
        for variable in ("JAEGER_OTLP_ENDPOINT", "TEMPO_OTLP_ENDPOINT"):
            host, port = environment[variable].split(":")
            assert host in compose["services"] and port == "4317"

    def test_prometheus_scrapes_the_collector_exporter(self) -> None:
        """deploy/prometheus.yaml scrapes the collector's prometheus exporter port."""
        prometheus = yaml.safe_load((DEPLOY / "prometheus.yaml").read_text())
        targets = {
            t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
        }
        port = _single()["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
        assert f"otel-collector:{port}" in targets

    def test_tempo_accepts_otlp_grpc(self) -> None:
        """deploy/tempo.yaml enables the OTLP/gRPC receiver the collector exports to."""
        tempo = yaml.safe_load((DEPLOY / "tempo.yaml").read_text())
        assert tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
        assert tempo["server"]["http_listen_port"] == 3200


# --- Grafana ----------------------------------------------------------------------------------------------
def _datasources() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "grafana" / "provisioning" / "datasources").glob("*.yaml")):
        for datasource in yaml.safe_load(path.read_text())["datasources"]:
            found[datasource["uid"]] = datasource
    return found


def _prometheus_names() -> set[str]:
    """Series names Prometheus gets: span metrics (from the connector's namespace) and the agent's metrics."""
    namespace = _single()["connectors"]["spanmetrics"]["namespace"].replace(".", "_")
    unit = {"s": "_seconds", "ms": "_milliseconds"}[
        _single()["connectors"]["spanmetrics"]["histogram"]["unit"]
    ]
    histograms = [f"{namespace}_duration{unit}"]
    # The agent's own instruments: OTel name -> Prometheus name (dots to underscores, unit suffix for
    # seconds, `_total` for counters). Units: durations "s", tokens "{token}" (annotations add no suffix).
    histograms += [
        semconv.METRIC_TOKEN_USAGE.replace(".", "_"),
        semconv.METRIC_OPERATION_DURATION.replace(".", "_") + "_seconds",
        semconv.METRIC_TOOL_DURATION.replace(".", "_") + "_seconds",
    ]
    names = {
        f"{namespace}_calls_total",
        f"{namespace}_events_total",
        semconv.METRIC_FINDINGS.replace(".", "_") + "_total",
    }
    names |= {f"{h}_{suffix}" for h in histograms for suffix in ("bucket", "sum", "count")}
    return names


def _prometheus_labels() -> set[str]:
    spanmetrics = _single()["connectors"]["spanmetrics"]
    dimensions = [d["name"] for d in spanmetrics["dimensions"] + spanmetrics["events"]["dimensions"]]
    labels = {name.replace(".", "_") for name in dimensions}
    labels |= {"service_name", "span_name", "span_kind", "status_code", "le", "job", "instance"}
    # Attributes of the agent's metrics (gen_ai.client.* semantic conventions and agent_trace.findings).
    labels |= {
        semconv.TOKEN_TYPE.replace(".", "_"),
        semconv.REQUEST_MODEL.replace(".", "_"),
        semconv.OPERATION_NAME.replace(".", "_"),
        semconv.TOOL_NAME.replace(".", "_"),
        semconv.FINDING_KIND.replace(".", "_"),
    }
    return labels


def _panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


class TestGrafana:
    def test_provisioned_datasources_are_tempo_prometheus_and_jaeger(self) -> None:
        """Datasources parse and point at the compose services by name."""
        datasources = _datasources()
        assert {d["type"] for d in datasources.values()} == {"tempo", "prometheus", "jaeger"}
        services = set(_compose()["services"])
        for datasource in datasources.values():
            host = re.match(r"https?://([^:/]+)", datasource["url"]).group(1)
            assert host in services, datasource["url"]
        exemplar_links = datasources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
        assert {link["datasourceUid"] for link in exemplar_links} <= set(datasources)

    def test_dashboard_provider_reads_the_mounted_dashboards(self) -> None:
        """The dashboards provider's path is where compose mounts deploy/grafana/dashboards."""
        (provider,) = yaml.safe_load(
            (DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml").read_text()
        )["providers"]
        mounts = dict(_bind_mounts(_compose()["services"]["grafana"]))
        assert mounts[DASHBOARD.parent.resolve()] == provider["options"]["path"]

    def test_every_panel_has_a_known_datasource_and_a_query(self) -> None:
        """Each panel names a provisioned datasource and has at least one query."""
        datasources = _datasources()
        panels = _panels()
        assert len(panels) >= 8
        for panel in panels:
            assert panel["datasource"]["uid"] in datasources, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                uid = target.get("datasource", panel["datasource"])["uid"]
                assert uid in datasources, panel["title"]
                assert target.get("expr") or target.get("query"), panel["title"]

    def test_prometheus_queries_use_series_and_labels_that_are_produced(self) -> None:
        """Every metric and label a PromQL query names is produced by span metrics or the agent's metrics."""
        names, labels = _prometheus_names(), _prometheus_labels()
        for panel in _panels():
            for target in panel["targets"]:
                expr = target.get("expr")
                if not expr:
                    continue
                # A series name is followed by a matcher or a range; functions and `by` by a parenthesis.
                selectors = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", expr))
                assert selectors, f"{panel['title']}: no metric in {expr}"
                assert selectors <= names, f"{panel['title']}: unknown series {selectors - names}"
                used_labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)\s*\"", expr))
                for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
                    used_labels |= {label.strip() for label in group.split(",") if label.strip()}
                assert used_labels <= labels, f"{panel['title']}: unknown labels {used_labels - labels}"

    def test_tempo_queries_use_attributes_the_instrumentation_emits(self) -> None:
        """TraceQL span attributes in the dashboard are names from semconv.py."""
        tempo_queries = [
            target["query"] for panel in _panels() for target in panel["targets"] if target.get("query")
        ]
        assert tempo_queries, "the dashboard should search traces in Tempo"
        for query in tempo_queries:
            attributes = set(re.findall(r"\bspan\.([a-z_][a-z0-9_.]*[a-z0-9_])", query))
            assert attributes and attributes <= EMITTED_NAMES, attributes - EMITTED_NAMES

    def test_dashboard_covers_the_questions_it_is_for(self) -> None:
        """Tokens by type, cache hit ratio and savings, turns, findings by kind and tool errors are shown."""
        text = DASHBOARD.read_text()
        for needle in (
            "gen_ai_token_type",
            'gen_ai_token_type=\\"cache_read\\"',
            semconv.CACHE_SAVED_USD,
            semconv.TURNS,
            "agent_trace_finding_kind",
            'agent_trace_tool_is_error=\\"true\\"',
        ):
            assert needle in text, needle
