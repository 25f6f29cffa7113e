#!/usr/bin/env python3
"""Writes the Grafana dashboards in this directory: one per practice, the gateway and an overview.

    python3 deploy/grafana/generate.py          # rewrite the *.json files next to this script
    python3 deploy/grafana/generate.py --check  # exit 1 when a file differs from what it would write

The JSON files are generated so that the nine practice dashboards stay alike (the same panels,
filters and units, the same place on the screen) and every query is written once. Edit this
script, not the JSON; deploy/check_observability.py fails when they disagree. A dashboard tuned
in the Grafana UI can be exported and its changes carried over here.

Every query reads only the metric names of the contract in deploy/README.md ("Metrics"); the
checker parses each one and, fed a real /metrics page (services/itsm/tests/observability_assets.rs
does that), fails on a name the binary does not produce.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
# Every query is filtered by these template variables. In `itsm dev` and compose the series have
# no namespace label: the "All" value `.*` also matches a missing label.
SCOPE = 'namespace=~"$namespace", instance=~"$instance"'
RATE = "$__rate_interval"
# gRPC codes that mean the server failed, not the caller (a bad argument, a missing record or a
# refused permission is the caller's problem and does not page anyone).
SERVER_FAULT = "UNKNOWN|INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED|DATA_LOSS"
FAULT = f'code=~"{SERVER_FAULT}"'
NOT_OK = 'code!="OK"'
IN_USE = 'state="in_use"'
IDLE = 'state="idle"'
P1 = 'priority="P1"'
P2 = 'priority="P2"'

# practice -> (title, gRPC service). Its consumer groups are named `<practice>.*`, its stream `<practice>`.
PRACTICES = {
    "incidents": ("Incidents", "itsm.incidents.v1.IncidentService"),
    "problems": ("Problems", "itsm.problems.v1.ProblemService"),
    "changes": ("Changes", "itsm.changes.v1.ChangeService"),
    "requests": ("Requests", "itsm.requests.v1.RequestService"),
    "cmdb": ("CMDB", "itsm.cmdb.v1.CmdbService"),
    "sla": ("SLA", "itsm.sla.v1.SlaService"),
    "knowledge": ("Knowledge", "itsm.knowledge.v1.KnowledgeService"),
    "identity": ("Identity", "itsm.identity.v1.IdentityService"),
}
GATEWAY = "gateway"


def sel(metric: str, *matchers: str) -> str:
    """A vector selector with the dashboard scope and `matchers` (already written PromQL)."""
    return f"{metric}{{{', '.join([*matchers, SCOPE])}}}"


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> dict:
    t = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "refId": ref}
    if instant:
        t["instant"] = True
        t["range"] = False
    else:
        t["range"] = True
    return t


class Board:
    """Lays panels out left to right in rows of 24 columns, numbering them."""

    def __init__(self) -> None:
        self.panels: list[dict] = []
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_height = 0

    def _place(self, w: int, h: int) -> dict:
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_height
            self.row_height = 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y = 0, self.y + self.row_height
        self.panels.append({
            "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            "id": self._id(), "panels": [], "title": title, "type": "row",
        })
        self.y += 1
        self.row_height = 0

    def timeseries(self, title: str, description: str, targets: list[dict], unit: str,
                   w: int = 8, h: int = 8, stack: bool = False, min_zero: bool = True) -> None:
        custom = {"drawStyle": "line", "fillOpacity": 20 if stack else 8, "lineWidth": 1,
                  "showPoints": "never", "spanNulls": False,
                  "stacking": {"group": "A", "mode": "normal" if stack else "none"}}
        defaults: dict = {"custom": custom, "unit": unit}
        if min_zero:
            defaults["min"] = 0
        self.panels.append({
            "datasource": DS, "description": description,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "gridPos": self._place(w, h), "id": self._id(),
            "options": {"legend": {"calcs": ["mean", "max", "lastNotNull"], "displayMode": "table",
                                   "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}},
            "targets": targets, "title": title, "type": "timeseries",
        })

    def stat(self, title: str, description: str, targets: list[dict], unit: str,
             thresholds: list[tuple[float | None, str]], w: int = 4, h: int = 4) -> None:
        self.panels.append({
            "datasource": DS, "description": description,
            "fieldConfig": {"defaults": {
                "color": {"mode": "thresholds"}, "unit": unit,
                "thresholds": {"mode": "absolute",
                               "steps": [{"color": c, "value": v} for v, c in thresholds]},
            }, "overrides": []},
            "gridPos": self._place(w, h), "id": self._id(),
            "options": {"colorMode": "background", "graphMode": "area", "justifyMode": "auto",
                        "orientation": "auto", "textMode": "auto",
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
            "targets": targets, "title": title, "type": "stat",
        })

    def table(self, title: str, description: str, targets: list[dict], w: int = 12, h: int = 8) -> None:
        self.panels.append({
            "datasource": DS, "description": description,
            "fieldConfig": {"defaults": {}, "overrides": []},
            "gridPos": self._place(w, h), "id": self._id(),
            "options": {"showHeader": True, "cellHeight": "sm"},
            "targets": targets, "title": title, "type": "table",
            "transformations": [{"id": "labelsToFields", "options": {}}],
        })


def variables(practice: str | None) -> list[dict]:
    """datasource, namespace and instance (the pods of `practice`, or every itsm pod)."""
    build = "itsm_build_info" if practice is None else f'itsm_build_info{{practice="{practice}"}}'
    scoped = ("itsm_build_info{namespace=~\"$namespace\"}" if practice is None
              else f'itsm_build_info{{practice="{practice}", namespace=~"$namespace"}}')

    def query_var(name: str, label: str, query: str) -> dict:
        return {
            "allValue": ".*", "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "datasource": DS, "definition": query, "hide": 0, "includeAll": True, "label": label,
            "multi": True, "name": name, "options": [],
            "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "regex": "", "skipUrlSync": False, "sort": 1, "type": "query",
        }

    return [
        {"current": {}, "hide": 0, "includeAll": False, "label": "Data source", "multi": False,
         "name": "datasource", "options": [], "query": "prometheus", "refresh": 1, "regex": "",
         "skipUrlSync": False, "type": "datasource"},
        query_var("namespace", "Namespace", f"label_values({build}, namespace)"),
        query_var("instance", "Instance", f"label_values({scoped}, instance)"),
    ]


def dashboard(uid: str, title: str, tags: list[str], description: str, board: Board,
              practice: str | None) -> dict:
    return {
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "description": description, "editable": True, "fiscalYearStartMonth": 0, "graphTooltip": 1,
        "id": None,
        "links": [{"asDropdown": True, "icon": "external link", "includeVars": True,
                   "keepTime": True, "tags": ["itsm"], "targetBlank": False, "title": "ITSM",
                   "type": "dashboards"}],
        "panels": board.panels, "refresh": "30s", "schemaVersion": SCHEMA_VERSION,
        "tags": tags, "templating": {"list": variables(practice)},
        "time": {"from": "now-3h", "to": "now"}, "timepicker": {}, "timezone": "", "title": title,
        "uid": uid, "version": 1, "weekStart": "",
    }


# ---------------------------------------------------------------------------- shared rows


def rpc_rows(b: Board, service: str) -> None:
    """Traffic, errors and latency of one gRPC service (the server side of every call)."""
    svc = f'service="{service}"'
    count = "itsm_rpc_server_duration_seconds_count"
    bucket = "itsm_rpc_server_duration_seconds_bucket"
    b.row("gRPC server")
    b.timeseries("Requests by method",
                 "Calls answered per second, by method, all codes.",
                 [target(f"sum by (method) (rate({sel(count, svc)}[{RATE}]))", "{{method}}")], "reqps")
    b.timeseries("Errors by code",
                 "Calls per second that did not end OK, by gRPC code. INVALID_ARGUMENT, NOT_FOUND, "
                 "PERMISSION_DENIED, FAILED_PRECONDITION are the callers' mistakes; UNKNOWN, INTERNAL, "
                 "UNAVAILABLE, DEADLINE_EXCEEDED and DATA_LOSS are ours.",
                 [target(f'sum by (code) (rate({sel(count, svc, NOT_OK)}[{RATE}]))', "{{code}}")],
                 "reqps", stack=True)
    b.timeseries("Server-fault ratio",
                 f"Share of calls that ended {SERVER_FAULT.replace('|', ', ')}: what the "
                 "ItsmServerErrors alerts watch (5% for 5 minutes pages).",
                 [target(f'sum(rate({sel(count, svc, FAULT)}[{RATE}])) '
                         f"/ sum(rate({sel(count, svc)}[{RATE}]))", "server faults")],
                 "percentunit")
    b.timeseries("Latency p50 / p95 / p99",
                 "Server-side latency of every call of this service, from the first byte in to "
                 "the answer.",
                 [target(f"histogram_quantile({q}, sum by (le) (rate({sel(bucket, svc)}[{RATE}])))",
                         f"p{int(q * 100)}", ref)
                  for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))], "s")
    b.timeseries("p99 latency by method",
                 "The slowest methods first: which call makes the p99.",
                 [target(f"histogram_quantile(0.99, sum by (le, method) (rate({sel(bucket, svc)}[{RATE}])))",
                         "{{method}}")], "s")
    b.timeseries("In flight",
                 "Calls being served right now, per pod. A climb with flat traffic means calls "
                 "wait (database pool, a slow dependency).",
                 [target(f"sum by (instance) ({sel('itsm_rpc_server_in_flight', svc)})", "{{instance}}")],
                 "short")


def pool_row(b: Board, practice: str) -> None:
    p = f'practice="{practice}"'
    b.row("Database")
    b.timeseries("DB pool connections",
                 "Connections of this practice's pool per pod, in use and idle, against the "
                 "pool's maximum. In use at the maximum means calls queue for a connection.",
                 [target(f'sum by (instance) ({sel("itsm_db_pool_connections", p, IN_USE)})',
                         "in use {{instance}}", "A"),
                  target(f'sum by (instance) ({sel("itsm_db_pool_connections", p, IDLE)})',
                         "idle {{instance}}", "B"),
                  target(f"max by (instance) ({sel('itsm_db_pool_max_connections', p)})",
                         "max {{instance}}", "C")], "short", w=12)
    b.timeseries("DB pool usage",
                 "Connections in use over the maximum, per pod (ItsmDbPoolSaturated fires at 90%).",
                 [target(f'sum by (instance) ({sel("itsm_db_pool_connections", p, IN_USE)}) '
                         f"/ max by (instance) ({sel('itsm_db_pool_max_connections', p)})", "{{instance}}")],
                 "percentunit", w=12)


def events_row(b: Board, practice: str) -> None:
    """The practice's outbox (what it publishes) and its consumer groups (named `<practice>.*`)."""
    stream = f'stream="{practice}"'
    group = f'group=~"{practice}\\\\..*"'
    owner = f'practice="{practice}"'
    b.row("Events")
    b.timeseries("Outbox backlog",
                 "Changes committed but not yet published to the bus. It should stay near zero; "
                 "a climb means the relay cannot publish (Redis down?) or has no lease holder.",
                 [target(f"max({sel('itsm_outbox_backlog', owner)})", "backlog")],
                 "short")
    b.timeseries("Outbox lag p99",
                 "Seconds from a change's commit to its event's publication (99th percentile).",
                 [target("histogram_quantile(0.99, sum by (le) (rate("
                         f"{sel('itsm_outbox_lag_seconds_bucket', stream)}[{RATE}])))", "p99")], "s")
    b.timeseries("Events published",
                 f"Events per second appended to the {practice} stream.",
                 [target(f"sum(rate({sel('itsm_events_published_total', stream)}[{RATE}]))", "published")],
                 "ops")
    b.timeseries("Consumer lag",
                 f"Messages not yet acknowledged by this practice's consumer groups ({practice}.*). "
                 "Every pod of a group reports the group's lag: max, not sum.",
                 [target(f"max by (stream, group) ({sel('itsm_events_consumer_lag', group)})",
                         "{{group}} on {{stream}}")], "short")
    b.timeseries("Event handling by outcome",
                 "Tries at handling an event per second: ok, retry (failed, tried again) and "
                 "dead_letter (given up, moved to the dead-letter stream).",
                 [target(f"sum by (group, outcome) (rate({sel('itsm_event_handle_duration_seconds_count', group)}"
                         f"[{RATE}]))", "{{group}} {{outcome}}")], "ops", stack=True)
    b.timeseries("Event handling p99",
                 "Seconds one try at handling an event takes, transaction and acknowledgement "
                 "included.",
                 [target("histogram_quantile(0.99, sum by (le, group) (rate("
                         f"{sel('itsm_event_handle_duration_seconds_bucket', group)}[{RATE}])))",
                         "{{group}}")], "s")


# ---------------------------------------------------------------------------- business rows


def business(b: Board, practice: str) -> None:
    # Business gauges are sampled from the database by every pod of the practice: max, not sum.
    if practice == "incidents":
        b.row("Incidents")
        b.stat("Open P1", "Open incidents of priority 1 (critical).",
               [target(f'max({sel("itsm_incidents_open", P1)})', "P1", instant=True)],
               "short", [(None, "green"), (1, "red")], w=6)
        b.stat("Open P2", "Open incidents of priority 2 (high).",
               [target(f'max({sel("itsm_incidents_open", P2)})', "P2", instant=True)],
               "short", [(None, "green"), (1, "orange")], w=6)
        b.timeseries("Open incidents by priority",
                     "Incidents not resolved, closed or canceled, by priority (sampled from the "
                     "database every 15 s).",
                     [target(f"max by (priority) ({sel('itsm_incidents_open')})", "{{priority}}")],
                     "short", w=12, h=8, stack=True)
    # Problems, changes and requests keep no records yet, so the process exposes no business
    # gauge for them (itsm_problems_open, itsm_changes_in_flight, itsm_requests_open): their
    # panels come with their tables. Until then their boards show RPC, pool and event health.
    elif practice == "sla":
        b.row("SLA clocks")
        b.timeseries("Timers pending",
                     "Durable deadlines (warnings, breaches) not yet fired.",
                     [target(f"max({sel('itsm_sla_timers_pending')})", "pending")], "short")
        b.timeseries("Breaches by kind",
                     "Task SLAs breached per minute, by kind (SLA, OLA, UC).",
                     [target(f"sum by (kind) (rate({sel('itsm_sla_breaches_total')}[{RATE}])) * 60",
                             "{{kind}}")], "short", stack=True)
        b.timeseries("Timer lateness p99",
                     "How late a deadline fires: the fire instant minus the due instant. Seconds "
                     "here mean breach events and escalations go out late.",
                     [target("histogram_quantile(0.99, sum by (le) (rate("
                             f"{sel('itsm_sla_timer_lateness_seconds_bucket')}[{RATE}])))", "p99")], "s")
        b.timeseries("Task SLAs by state",
                     "Task SLAs by state (IN_PROGRESS, PAUSED, BREACHED, ...), sampled every 15 s.",
                     [target(f"max by (state) ({sel('itsm_sla_task_slas')})", "{{state}}")],
                     "short", w=24, stack=True)
    elif practice == "cmdb":
        b.row("Cache")
        b.timeseries("Cache hit ratio",
                     "CI reads answered from the cache over all cache reads (the CMDB's shared "
                     "cache; in itsm dev the process cache).",
                     [target(f"sum(rate({sel('itsm_cache_hits_total')}[{RATE}])) / "
                             f"(sum(rate({sel('itsm_cache_hits_total')}[{RATE}])) + "
                             f"sum(rate({sel('itsm_cache_misses_total')}[{RATE}])))", "hit ratio")],
                     "percentunit", w=12)
        b.timeseries("Cache errors",
                     "Cache operations that failed per second (Redis down or slow); reads fall "
                     "back to the database.",
                     [target(f"sum(rate({sel('itsm_cache_errors_total')}[{RATE}]))", "errors")],
                     "ops", w=12)


def practice_dashboard(practice: str) -> dict:
    title, service = PRACTICES[practice]
    b = Board()
    rpc_rows(b, service)
    business(b, practice)
    pool_row(b, practice)
    events_row(b, practice)
    return dashboard(
        f"itsm-{practice}", f"ITSM / {title}", ["itsm", practice],
        f"{title}: gRPC traffic, errors and latency of {service}, its database pool, outbox and "
        "consumers, and its own figures. Generated by deploy/grafana/generate.py.",
        b, practice)


# ---------------------------------------------------------------------------- gateway


def gateway_dashboard() -> dict:
    count = "itsm_gateway_request_duration_seconds_count"
    bucket = "itsm_gateway_request_duration_seconds_bucket"
    b = Board()
    b.row("Backends")
    b.stat("Backends not ready",
           "Backends (practices) that at least one gateway pod does not see as ready. Calls for "
           "them fail with UNAVAILABLE (503 over REST).",
           [target(f"count(min by (backend) ({sel('itsm_gateway_backend_ready')}) == 0) or vector(0)",
                   "not ready", instant=True)], "short", [(None, "green"), (1, "red")], w=6)
    b.table("Backend readiness by pod",
            "1 = ready, 0 = not ready, per gateway pod and backend.",
            [target(f"min by (backend, instance) ({sel('itsm_gateway_backend_ready')})", "", instant=True)],
            w=18)
    b.row("Requests")
    b.timeseries("Requests by protocol and service",
                 "Calls per second through the gateway: gRPC pass-through and REST/JSON.",
                 [target(f"sum by (protocol, service) (rate({sel(count)}[{RATE}]))",
                         "{{protocol}} {{service}}")], "reqps", w=12)
    b.timeseries("Errors by code",
                 "Calls per second that did not end OK, by protocol and code.",
                 [target(f'sum by (protocol, code) (rate({sel(count, NOT_OK)}[{RATE}]))',
                         "{{protocol}} {{code}}")], "reqps", w=12, stack=True)
    b.timeseries("Latency p50 / p95 / p99",
                 "End-to-end latency at the edge: authentication, rate limit and the backend call.",
                 [target(f"histogram_quantile({q}, sum by (le) (rate({sel(bucket)}[{RATE}])))",
                         f"p{int(q * 100)}", ref)
                  for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))], "s")
    b.timeseries("p99 latency by service",
                 "Which backend makes the edge slow.",
                 [target(f"histogram_quantile(0.99, sum by (le, service) (rate({sel(bucket)}[{RATE}])))",
                         "{{service}}")], "s")
    b.timeseries("Rate limited",
                 "Calls refused by the shared rate limits per second, by class (read, write).",
                 [target(f"sum by (class) (rate({sel('itsm_gateway_rate_limited_total')}[{RATE}]))",
                         "{{class}}")], "reqps")
    return dashboard(
        "itsm-gateway", "ITSM / Gateway", ["itsm", GATEWAY],
        "The API gateway: backend readiness, traffic, errors and latency by protocol and service, "
        "rate limiting. Generated by deploy/grafana/generate.py.", b, GATEWAY)


# ---------------------------------------------------------------------------- overview


def overview_dashboard() -> dict:
    count = "itsm_rpc_server_duration_seconds_count"
    bucket = "itsm_rpc_server_duration_seconds_bucket"
    fault = FAULT
    b = Board()
    b.row("Health")
    b.stat("Targets down", "itsm scrape targets Prometheus cannot reach (ItsmTargetDown).",
           [target('count(up{job="itsm", namespace=~"$namespace"} == 0) or vector(0)', "down",
                   instant=True)], "short", [(None, "green"), (1, "red")])
    b.stat("Server-fault ratio", "Share of all calls, every practice, that failed on our side (last 5 min).",
           [target(f"sum(rate({sel(count, fault)}[5m])) / sum(rate({sel(count)}[5m]))", "faults",
                   instant=True)], "percentunit", [(None, "green"), (0.01, "orange"), (0.05, "red")])
    b.stat("SLA breaches (1 h)", "Task SLAs breached in the last hour, all kinds.",
           [target(f"sum(increase({sel('itsm_sla_breaches_total')}[1h]))", "breaches", instant=True)],
           "short", [(None, "green"), (1, "orange")])
    b.stat("Open P1 incidents", "Open priority 1 incidents.",
           [target(f'max({sel("itsm_incidents_open", P1)})', "P1", instant=True)],
           "short", [(None, "green"), (1, "red")])
    b.stat("Max consumer lag", "The largest consumer group lag, any stream.",
           [target(f"max({sel('itsm_events_consumer_lag')})", "lag", instant=True)],
           "short", [(None, "green"), (100, "orange"), (1000, "red")])
    b.stat("Gateway backends not ready", "Backends some gateway pod does not see as ready.",
           [target(f"count(min by (backend) ({sel('itsm_gateway_backend_ready')}) == 0) or vector(0)",
                   "not ready", instant=True)], "short", [(None, "green"), (1, "red")])
    b.row("Practices")
    b.timeseries("Server-fault ratio by service",
                 f"Per gRPC service, the share of calls that ended {SERVER_FAULT.replace('|', ', ')}.",
                 [target(f"sum by (service) (rate({sel(count, fault)}[{RATE}])) / "
                         f"sum by (service) (rate({sel(count)}[{RATE}]))", "{{service}}")],
                 "percentunit", w=12)
    b.timeseries("p99 latency by service", "Server-side p99 per gRPC service.",
                 [target(f"histogram_quantile(0.99, sum by (le, service) (rate({sel(bucket)}[{RATE}])))",
                         "{{service}}")], "s", w=12)
    b.timeseries("Requests by service", "Calls per second per gRPC service.",
                 [target(f"sum by (service) (rate({sel(count)}[{RATE}]))", "{{service}}")], "reqps", w=12)
    b.timeseries("Calls between services by code",
                 "Outgoing gRPC calls one service makes to another (incidents to CMDB, every "
                 "service to identity), by target service and code.",
                 [target(f"sum by (service, code) (rate({sel('itsm_rpc_client_duration_seconds_count')}"
                         f"[{RATE}]))", "{{service}} {{code}}")], "reqps", w=12)
    b.row("Events and SLA")
    b.timeseries("Consumer lag by group", "Messages not yet acknowledged, per consumer group.",
                 [target(f"max by (stream, group) ({sel('itsm_events_consumer_lag')})",
                         "{{group}} on {{stream}}")], "short")
    b.timeseries("Outbox backlog by practice", "Committed changes not yet published, per practice.",
                 [target(f"max by (practice) ({sel('itsm_outbox_backlog')})", "{{practice}}")], "short")
    b.timeseries("SLA breaches by kind", "Task SLAs breached per minute.",
                 [target(f"sum by (kind) (rate({sel('itsm_sla_breaches_total')}[{RATE}])) * 60", "{{kind}}")],
                 "short", stack=True)
    b.timeseries("Dead letters", "Events given up on per second, by stream and group.",
                 [target(f"sum by (stream, group) (rate({sel('itsm_events_dead_letters_total')}[{RATE}]))",
                         "{{group}} on {{stream}}")], "ops")
    b.timeseries("Redis p99 by command", "Seconds from sending a Redis command to its answer.",
                 [target("histogram_quantile(0.99, sum by (le, command) (rate("
                         f"{sel('itsm_redis_command_duration_seconds_bucket')}[{RATE}])))", "{{command}}")],
                 "s")
    b.timeseries("Redis errors by command", "Redis commands that failed per second.",
                 [target(f"sum by (command) (rate({sel('itsm_redis_errors_total')}[{RATE}]))", "{{command}}")],
                 "ops")
    b.row("Versions")
    b.table("Running versions", "Pods by practice and version (itsm_build_info).",
            [target(f"count by (practice, version) ({sel('itsm_build_info')})", "", instant=True)], w=24)
    return dashboard(
        "itsm-overview", "ITSM / Overview", ["itsm", "overview"],
        "Every practice at a glance: server faults and p99 per service, SLA breaches, consumer "
        "lag and outbox backlog, gateway backends. Generated by deploy/grafana/generate.py.",
        b, None)


def dashboards() -> dict[str, dict]:
    out = {f"{p}.json": practice_dashboard(p) for p in PRACTICES}
    out["gateway.json"] = gateway_dashboard()
    out["overview.json"] = overview_dashboard()
    return out


def render(board: dict) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, board in dashboards().items():
        path = HERE / name
        text = render(board)
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"deploy/grafana: {', '.join(stale)} differ from generate.py's output: "
              "run python3 deploy/grafana/generate.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
