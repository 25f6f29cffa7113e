#!/usr/bin/env python3
"""Checks the Grafana dashboards (deploy/grafana/) and Prometheus files (deploy/prometheus/).

    python3 deploy/check_observability.py                    # structure and PromQL, no network
    python3 deploy/check_observability.py --metrics FILE ... # also: every metric name they use is
                                                             # on one of these /metrics pages
                                                             # ('-': stdin); repeat for several
    python3 deploy/check_observability.py --names            # print the metric names they use

Prints one line per failure and exits 1 if there is any, 0 otherwise. Needs PyYAML, promql-parser
(PyPI: Python bindings of an independent PromQL parser, the one GreptimeDB uses) and, with
--metrics, prometheus-client (its text-format parser reads the page). scripts/test installs them.

What it verifies:
  * deploy/grafana/: one dashboard per practice, the gateway and an overview, each exactly what
    generate.py writes; JSON parses; schemaVersion >= 36; uids and titles unique; a `datasource`
    variable of type prometheus, and every panel and target uses `${datasource}`; panel ids
    unique (rows' nested panels included); every panel sits inside the 24-column grid without
    overlapping another; every non-row panel has targets, every target a unique refId and a
    non-empty expr; every `$variable` is defined (or a Grafana built-in); each legend's
    `{{label}}` survives the query's aggregation; variable queries (label_values) are checked
    like panel queries;
  * deploy/grafana/kustomization.yaml (the ConfigMaps k8s/observability applies) holds every
    dashboard once; when kustomize or kubectl is on PATH, k8s/observability renders to one
    ConfigMap per dashboard, each holding that dashboard's JSON, and the rules' ConfigMap;
  * deploy/prometheus/itsm.rules.yaml: the rule-file schema (groups with unique names; rules with
    alert or record, only known keys, a valid `for`), alert names unique and CamelCase, a
    severity of critical or warning, summary, description and runbook annotations, the runbook
    naming a section of deploy/README.md that exists, every `{{ $labels.x }}` in an annotation a
    label the expression keeps, and the README's "On call" section covering every alert;
  * when `promtool` is on PATH (set ITSM_CHECK_PROMTOOL=0 to skip): Prometheus' own checker
    accepts the rule file, and its unit tests (itsm.rules.test.yaml: synthetic series; each alert
    quiet below its threshold or before its `for`, then firing with its labels and rendered
    annotations) pass;
  * deploy/prometheus/scrape.yaml: parses, has the `itsm` job the rules expect, and its
    rule_files exist;
  * every PromQL expression parses (with promql-parser: syntax, function names and argument
    types), and every metric name it selects is itsm_* (or `up`);
  * with --metrics: every selected name is a sample name on one of the pages (several: `itsm
    dev` has no Redis, so its page lacks the Redis metrics a served practice has). Histogram series are
    checked as written (`x_bucket`, `x_count`, `x_sum`), so a histogram queried by its bare name
    or a counter without `_total` is caught.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover
    print("check_observability: PyYAML is required (pip install pyyaml)")
    sys.exit(1)
try:
    import promql_parser as promql
except ImportError:  # pragma: no cover
    print("check_observability: promql-parser is required (pip install promql-parser)")
    sys.exit(1)

REPO = Path(__file__).resolve().parent.parent
GRAFANA = REPO / "deploy" / "grafana"
PROMETHEUS = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "itsm.rules.yaml"
RULE_TESTS = PROMETHEUS / "itsm.rules.test.yaml"
SCRAPE = PROMETHEUS / "scrape.yaml"
README = REPO / "deploy" / "README.md"
K8S_OBSERVABILITY = REPO / "k8s" / "observability"

DASHBOARDS = {f"{name}.json" for name in (
    "incidents", "problems", "changes", "requests", "cmdb", "sla", "knowledge", "identity",
    "gateway", "overview")}
MIN_SCHEMA_VERSION = 36
DATASOURCE_UID = "${datasource}"
PANEL_TYPES = {"row", "timeseries", "stat", "table", "gauge", "bargauge", "heatmap", "text"}
# Grafana's own variables, replaced by a duration (or a value) before the query is parsed.
GRAFANA_DURATIONS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
GRAFANA_BUILTINS = {*GRAFANA_DURATIONS, "__interval_ms", "__range_s", "__range_ms", "__all",
                    "__dashboard", "__org", "__user", "__from", "__to", "__name"}
SEVERITIES = {"critical", "warning"}
RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
GROUP_KEYS = {"name", "interval", "rules", "limit", "query_offset", "labels"}
ANNOTATIONS = ("summary", "description", "runbook")
ALLOWED_PLAIN = {"up"}  # Prometheus' own series

failures: list[str] = []


def fail(where: str, message: str) -> None:
    failures.append(f"{where}: {message}")


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- PromQL


@dataclass
class Use:
    """A metric name one expression selects, and where the expression is."""

    name: str
    where: str


uses: list[Use] = []


def parse(expr: str, where: str):
    """Parses `expr` (Grafana durations already substituted); records the metric names it
    selects. Returns the AST, or None after reporting why it does not parse."""
    try:
        ast = promql.parse(expr)
    except ValueError as e:
        fail(where, f"PromQL does not parse: {e}: {expr!r}")
        return None

    def visit(node) -> None:
        if isinstance(node, promql.VectorSelector):
            names = [node.name] if node.name else []
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    if str(m.op) != "MatchOp.Equal":
                        fail(where, f"selects metric names by pattern ({m.op}): name them, so "
                                    f"they can be checked: {expr!r}")
                    else:
                        names.append(m.value)
            for name in names:
                if not (name.startswith("itsm_") or name in ALLOWED_PLAIN):
                    fail(where, f"metric {name!r} is not an itsm_ metric")
                uses.append(Use(name, where))

    promql.walk(ast, visit)
    return ast


def is_scalar(node) -> bool:
    if isinstance(node, promql.NumberLiteral):
        return True
    if isinstance(node, (promql.ParenExpr, promql.UnaryExpr)):
        return is_scalar(node.expr)
    if isinstance(node, promql.Call):
        return node.func.name in {"scalar", "time", "pi"}
    if isinstance(node, promql.BinaryExpr):
        return is_scalar(node.lhs) and is_scalar(node.rhs)
    return False


def output_labels(node) -> set[str] | None:
    """The labels the result of `node` can carry; None when that is "whatever the series
    have" (a plain selector). Used to check `{{ $labels.x }}` and legends against the query."""
    if isinstance(node, (promql.VectorSelector, promql.MatrixSelector)):
        return None
    if isinstance(node, (promql.NumberLiteral, promql.StringLiteral)):
        return set()
    if isinstance(node, (promql.ParenExpr, promql.UnaryExpr, promql.SubqueryExpr)):
        return output_labels(node.expr)
    if isinstance(node, promql.AggregateExpr):
        inner = output_labels(node.expr)
        op = str(node.op)
        if op in {"topk", "bottomk", "limitk", "limit_ratio"}:
            return inner
        mod = node.modifier
        if mod is None:
            base: set[str] | None = set()
        elif str(mod.type).endswith("By"):
            base = set(mod.labels)
        else:
            base = None if inner is None else inner - set(mod.labels)
        if op == "count_values" and base is not None:
            base = base | {str(node.param).strip('"')}
        return base
    if isinstance(node, promql.Call):
        name = node.func.name
        vector_args = [a for a in node.args if not is_scalar(a) and not isinstance(a, promql.StringLiteral)]
        if name in {"vector", "time", "scalar", "pi"}:
            return set()
        if name in {"absent", "absent_over_time"}:
            sel = node.args[0]
            sel = sel.vector_selector if isinstance(sel, promql.MatrixSelector) else sel
            if isinstance(sel, promql.VectorSelector):
                return {m.name for m in sel.matchers.matchers
                        if str(m.op) == "MatchOp.Equal" and m.name != "__name__"}
            return set()
        inner = output_labels(vector_args[0]) if vector_args else set()
        if name == "histogram_quantile":
            return None if inner is None else inner - {"le"}
        if name in {"label_replace", "label_join"}:
            dst = str(node.args[1]).strip('"')
            return None if inner is None else inner | {dst}
        return inner
    if isinstance(node, promql.BinaryExpr):
        lhs, rhs = output_labels(node.lhs), output_labels(node.rhs)
        if is_scalar(node.lhs):
            return rhs
        if is_scalar(node.rhs):
            return lhs
        op = str(node.op).strip()
        if op in {"and", "unless"}:
            return lhs
        if op == "or":
            return None if lhs is None or rhs is None else lhs | rhs
        mod = node.modifier
        card = str(mod.card) if mod else "VectorMatchCardinality.OneToOne"
        matching = mod.matching if mod else None
        include = set(mod.group_labels or []) if mod else set()
        if card.endswith("OneToOne"):
            if matching is not None and str(matching.type).endswith("Include"):
                return set(matching.labels)
            if matching is not None and lhs is not None:
                return lhs - set(matching.labels)
            return lhs
        if card.endswith("ManyToOne"):
            return None if lhs is None else lhs | include
        return None if rhs is None else rhs | include
    return None


def check_labels_used(used: set[str], ast, where: str, what: str) -> None:
    labels = output_labels(ast)
    if labels is None:
        return
    for label in sorted(used - labels):
        fail(where, f"{what} uses label {label!r}, which the query does not keep "
                    f"(it keeps {sorted(labels) or 'none'})")


# --------------------------------------------------------------------------- dashboards


VAR_RE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))|\[\[(\w+)\]\]")


def grafana_expr(expr: str, defined: set[str], where: str) -> str:
    """`expr` with Grafana's duration variables replaced; reports undefined variables. Other
    variables stay as they are: outside a quoted string they make the query fail to parse,
    which is right (a variable in a label value is the only use the dashboards need)."""
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in GRAFANA_DURATIONS:
            return GRAFANA_DURATIONS[name]
        if name not in defined and name not in GRAFANA_BUILTINS:
            fail(where, f"uses ${name}, which is not a variable of this dashboard")
        return m.group(0)

    return VAR_RE.sub(sub, expr)


def all_panels(panels: list) -> list:
    out = []
    for p in panels or []:
        out.append(p)
        out.extend(all_panels(p.get("panels") or []))
    return out


def check_dashboard(path: Path, seen_uids: dict, seen_titles: dict) -> None:
    where = rel(path)
    try:
        board = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        fail(where, f"does not parse as JSON: {e}")
        return
    if not isinstance(board, dict):
        fail(where, "is not a JSON object")
        return
    if not isinstance(board.get("schemaVersion"), int) or board["schemaVersion"] < MIN_SCHEMA_VERSION:
        fail(where, f"schemaVersion {board.get('schemaVersion')!r}, want >= {MIN_SCHEMA_VERSION}")
    for key, seen in (("uid", seen_uids), ("title", seen_titles)):
        value = board.get(key)
        if not isinstance(value, str) or not value:
            fail(where, f"has no {key}")
        elif value in seen:
            fail(where, f"{key} {value!r} is also {seen[value]}'s")
        else:
            seen[value] = where
    if board.get("id") is not None:
        fail(where, "has a database id: export with id null so it imports anywhere")

    variables = (board.get("templating") or {}).get("list") or []
    defined = {v.get("name") for v in variables if isinstance(v, dict)}
    ds = [v for v in variables if v.get("name") == "datasource"]
    if not ds or ds[0].get("type") != "datasource" or ds[0].get("query") != "prometheus":
        fail(where, "has no `datasource` variable of type datasource for prometheus")
    for v in variables:
        vwhere = f"{where} variable {v.get('name')!r}"
        if v.get("type") != "query":
            continue
        if (v.get("datasource") or {}).get("uid") != DATASOURCE_UID:
            fail(vwhere, f"does not query {DATASOURCE_UID}")
        query = v.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", str(query or ""))
        if not m:
            fail(vwhere, f"query {query!r} is not label_values(<selector>, <label>)")
            continue
        parse(grafana_expr(m.group(1), defined - {v.get("name")}, vwhere), vwhere)

    panels = all_panels(board.get("panels") or [])
    if not panels:
        fail(where, "has no panels")
    ids: dict = {}
    cells: dict = {}
    for p in panels:
        pid = p.get("id")
        pwhere = f"{where} panel {pid} {p.get('title')!r}"
        if not isinstance(pid, int):
            fail(pwhere, "has no integer id")
        elif pid in ids:
            fail(pwhere, f"id {pid} is also panel {ids[pid]!r}'s")
        else:
            ids[pid] = p.get("title")
        if not p.get("title"):
            fail(pwhere, "has no title")
        kind = p.get("type")
        if kind not in PANEL_TYPES:
            fail(pwhere, f"type {kind!r} is not one of {sorted(PANEL_TYPES)}")
        pos = p.get("gridPos") or {}
        if not all(isinstance(pos.get(k), int) for k in ("h", "w", "x", "y")):
            fail(pwhere, f"gridPos {pos} lacks integer h, w, x, y")
        elif pos["w"] < 1 or pos["x"] < 0 or pos["x"] + pos["w"] > 24 or pos["h"] < 1:
            fail(pwhere, f"gridPos {pos} is outside the 24-column grid")
        else:
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    if (x, y) in cells:
                        fail(pwhere, f"overlaps panel {cells[(x, y)]!r}")
                        break
                    cells[(x, y)] = p.get("title")
                else:
                    continue
                break
        if kind == "row":
            continue
        if (p.get("datasource") or {}).get("uid") != DATASOURCE_UID:
            fail(pwhere, f"datasource is not {DATASOURCE_UID}")
        targets = p.get("targets") or []
        if not targets:
            fail(pwhere, "has no targets")
        refs = set()
        for t in targets:
            twhere = f"{pwhere} target {t.get('refId')!r}"
            if not t.get("refId") or t.get("refId") in refs:
                fail(twhere, "refId missing or repeated in the panel")
            refs.add(t.get("refId"))
            if (t.get("datasource") or {}).get("uid") != DATASOURCE_UID:
                fail(twhere, f"datasource is not {DATASOURCE_UID}")
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                fail(twhere, "has no expr")
                continue
            ast = parse(grafana_expr(expr, defined, twhere), twhere)
            legend = t.get("legendFormat") or ""
            if ast is not None and legend not in ("", "__auto"):
                check_labels_used(set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)), ast, twhere,
                                  f"legend {legend!r}")


def check_dashboards() -> None:
    present = {p.name for p in GRAFANA.glob("*.json")}
    for name in sorted(DASHBOARDS - present):
        fail(rel(GRAFANA / name), "missing")
    for name in sorted(present - DASHBOARDS):
        fail(rel(GRAFANA / name), "is not one of the expected dashboards (add it to DASHBOARDS)")
    seen_uids: dict = {}
    seen_titles: dict = {}
    for name in sorted(present):
        check_dashboard(GRAFANA / name, seen_uids, seen_titles)
    kust = GRAFANA / "kustomization.yaml"
    try:
        doc = yaml.safe_load(kust.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        fail(rel(kust), f"does not parse: {e}")
        doc = {}
    listed = [f for g in doc.get("configMapGenerator") or [] for f in g.get("files") or []]
    if sorted(listed) != sorted(DASHBOARDS):
        fail(rel(kust), f"its ConfigMaps hold {sorted(listed)}, want every dashboard once: "
                        f"{sorted(DASHBOARDS)}")
    generator = GRAFANA / "generate.py"
    spec = importlib.util.spec_from_file_location("itsm_grafana_generate", generator)
    if spec is None or spec.loader is None:
        fail(rel(generator), "cannot be loaded")
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, board in module.dashboards().items():
        path = GRAFANA / name
        if path.is_file() and path.read_text() != module.render(board):
            fail(rel(path), "differs from what generate.py writes: edit generate.py and run "
                            "python3 deploy/grafana/generate.py")


# --------------------------------------------------------------------------- rules


def readme_anchors() -> set[str]:
    """GitHub-style anchors of the headings of deploy/README.md."""
    text = README.read_text() if README.is_file() else ""
    anchors = set()
    for heading in re.findall(r"(?m)^#+\s+(.+?)\s*$", text):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(anchor)
    return anchors


def on_call_section() -> str:
    text = README.read_text() if README.is_file() else ""
    m = re.search(r"(?ms)^## On call\s*$(.*?)(?=^## |\Z)", text)
    return m.group(1) if m else ""


def check_duration(value, where: str, key: str) -> None:
    try:
        promql.parse_duration(str(value))
    except ValueError as e:
        fail(where, f"{key} {value!r} is not a duration: {e}")


def check_template(text: str, ast, where: str, key: str) -> None:
    if text.count("{{") != text.count("}}"):
        fail(where, f"annotation {key}: unbalanced {{{{ }}}}")
    used = set(re.findall(r"\$labels\.(\w+)", text))
    if ast is not None:
        check_labels_used(used, ast, where, f"annotation {key}")


def check_rules() -> None:
    where = rel(RULES)
    try:
        doc = yaml.safe_load(RULES.read_text())
    except (OSError, yaml.YAMLError) as e:
        fail(where, f"does not parse: {e}")
        return
    if not isinstance(doc, dict) or set(doc) != {"groups"} or not isinstance(doc["groups"], list):
        fail(where, "a rule file holds exactly one key, `groups`, a list")
        return
    anchors = readme_anchors()
    on_call = on_call_section()
    if not on_call:
        fail(rel(README), "has no \"## On call\" section describing the alerts")
    groups: set = set()
    alerts: set = set()
    for g in doc["groups"]:
        gwhere = f"{where} group {g.get('name')!r}" if isinstance(g, dict) else where
        if not isinstance(g, dict) or not isinstance(g.get("name"), str) or not g["name"]:
            fail(gwhere, "a group needs a name")
            continue
        if g["name"] in groups:
            fail(gwhere, "group name repeated")
        groups.add(g["name"])
        if set(g) - GROUP_KEYS:
            fail(gwhere, f"unknown key(s) {sorted(set(g) - GROUP_KEYS)}")
        if "interval" in g:
            check_duration(g["interval"], gwhere, "interval")
        rules = g.get("rules")
        if not isinstance(rules, list) or not rules:
            fail(gwhere, "has no rules")
            continue
        for r in rules:
            if not isinstance(r, dict):
                fail(gwhere, "a rule is not a mapping")
                continue
            name = r.get("alert") or r.get("record")
            rwhere = f"{where} {'alert' if 'alert' in r else 'record'} {name!r}"
            if ("alert" in r) == ("record" in r):
                fail(rwhere, "a rule has exactly one of alert, record")
            if set(r) - RULE_KEYS:
                fail(rwhere, f"unknown key(s) {sorted(set(r) - RULE_KEYS)}")
            expr = r.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                fail(rwhere, "has no expr")
                continue
            ast = parse(expr, rwhere)
            for key in ("for", "keep_firing_for"):
                if key in r:
                    check_duration(r[key], rwhere, key)
            if "record" in r:
                if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", str(name)):
                    fail(rwhere, "record name is not a metric name")
                continue
            if not re.fullmatch(r"Itsm[A-Z][A-Za-z0-9]*", str(name)):
                fail(rwhere, "alert name is not CamelCase starting with Itsm")
            if name in alerts:
                fail(rwhere, "alert name repeated")
            alerts.add(name)
            labels = r.get("labels") or {}
            if labels.get("severity") not in SEVERITIES:
                fail(rwhere, f"severity {labels.get('severity')!r}, want one of {sorted(SEVERITIES)}")
            notes = r.get("annotations") or {}
            for key in ANNOTATIONS:
                if not isinstance(notes.get(key), str) or not notes[key].strip():
                    fail(rwhere, f"has no {key} annotation")
            for key, text in notes.items():
                check_template(str(text), ast, rwhere, key)
            runbook = str(notes.get("runbook", ""))
            m = re.fullmatch(r"deploy/README\.md#([\w-]+)", runbook)
            if runbook and not m:
                fail(rwhere, f"runbook {runbook!r} is not deploy/README.md#<section>")
            elif m and m.group(1) not in anchors:
                fail(rwhere, f"runbook section #{m.group(1)} is not a heading of deploy/README.md")
            if on_call and not re.search(rf"(?m)^###\s+{re.escape(str(name))}\s*$", on_call):
                fail(rel(README), f"the On call section does not describe alert {name}")
    if not alerts:
        fail(where, "has no alerts")


def check_promtool() -> None:
    """Prometheus' own checks, when its promtool is installed (scripts/test fetches it)."""
    if os.environ.get("ITSM_CHECK_PROMTOOL", "1") == "0" or not shutil.which("promtool"):
        why = "ITSM_CHECK_PROMTOOL=0" if os.environ.get("ITSM_CHECK_PROMTOOL") == "0" else "no promtool on PATH"
        print(f"check_observability: note: {why}, promtool check and rule unit tests skipped",
              file=sys.stderr)
        return
    for args, path in ((["check", "rules"], RULES), (["test", "rules"], RULE_TESTS)):
        try:
            out = subprocess.run(["promtool", *args, path.name], cwd=path.parent,
                                 capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            fail(rel(path), f"promtool {' '.join(args)} failed to run: {e}")
            continue
        if out.returncode != 0:
            fail(rel(path), f"promtool {' '.join(args)} failed:\n{(out.stdout + out.stderr).strip()}")


def check_k8s_render() -> None:
    """k8s/observability renders to the dashboards' and the rules' ConfigMaps, files intact."""
    tool = (["kustomize", "build"] if shutil.which("kustomize")
            else ["kubectl", "kustomize"] if shutil.which("kubectl") else None)
    if tool is None or os.environ.get("ITSM_CHECK_RENDER", "1") == "0":
        print("check_observability: note: no kustomize/kubectl on PATH (or ITSM_CHECK_RENDER=0), "
              "k8s/observability not rendered", file=sys.stderr)
        return
    where = f"{rel(K8S_OBSERVABILITY)} (rendered)"
    try:
        out = subprocess.run([*tool, str(K8S_OBSERVABILITY)], capture_output=True, text=True,
                             timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        fail(where, f"{' '.join(tool)} failed: {e}")
        return
    if out.returncode != 0:
        fail(where, f"{' '.join(tool)} failed: {out.stderr.strip()}")
        return
    data = {}
    for doc in yaml.safe_load_all(out.stdout):
        if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
            data.update(doc.get("data") or {})
    expected = {name: (GRAFANA / name) for name in DASHBOARDS} | {RULES.name: RULES}
    for key, path in sorted(expected.items()):
        if key not in data:
            fail(where, f"no ConfigMap holds {key}")
        elif path.is_file() and data[key] != path.read_text():
            fail(where, f"the ConfigMap's {key} differs from {rel(path)}")


def check_scrape() -> None:
    where = rel(SCRAPE)
    try:
        doc = yaml.safe_load(SCRAPE.read_text())
    except (OSError, yaml.YAMLError) as e:
        fail(where, f"does not parse: {e}")
        return
    jobs = [j.get("job_name") for j in (doc or {}).get("scrape_configs") or [] if isinstance(j, dict)]
    if "itsm" not in jobs:
        fail(where, "has no job `itsm` (ItsmTargetDown and the overview's Targets down expect it)")
    if len(jobs) != len(set(jobs)):
        fail(where, f"job names repeated: {jobs}")
    for f in (doc or {}).get("rule_files") or []:
        if not (SCRAPE.parent / f).is_file():
            fail(where, f"rule file {f!r} does not exist next to it")


# --------------------------------------------------------------------------- /metrics


def page_names(text: str, where: str) -> set[str] | None:
    """Sample names on a Prometheus text-format page, read by prometheus-client's parser."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        fail(where, "prometheus-client is required to read the page (pip install prometheus-client)")
        return None
    names = set()
    try:
        for family in text_string_to_metric_families(text):
            names.update(s.name for s in family.samples)
    except ValueError as e:
        fail(where, f"is not a Prometheus text-format page: {e}")
        return None
    return names


def check_names_exist(pages: dict[str, str]) -> None:
    names: set[str] = set()
    for where, text in pages.items():
        found = page_names(text, where)
        if found is None:
            return
        if not any(n.startswith("itsm_") for n in found):
            fail(where, "has no itsm_ metric at all")
            return
        names |= found
    where = " + ".join(pages)
    missing: dict[str, list[str]] = {}
    for use in uses:
        if use.name in ALLOWED_PLAIN or use.name in names:
            continue
        missing.setdefault(use.name, []).append(use.where)
    for name, wheres in sorted(missing.items()):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        hint = ""
        if base != name and base in names:
            hint = f" ({base} is there, but not as a histogram)"
        elif base == name and f"{name}_bucket" in names:
            hint = f" ({name} is a histogram: query {name}_bucket, _sum or _count)"
        fail(where, f"no {name}{hint}; used by {wheres[0]}"
                    + (f" and {len(wheres) - 1} more" if len(wheres) > 1 else ""))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--metrics", action="append", default=[],
                    help="a /metrics page (a file, or - for stdin); repeated, the pages together "
                         "must have every metric name the dashboards and rules use")
    ap.add_argument("--names", action="store_true", help="print the metric names used, one a line")
    args = ap.parse_args(argv)
    check_dashboards()
    check_rules()
    check_promtool()
    check_k8s_render()
    check_scrape()
    if args.metrics:
        pages = {}
        for source in args.metrics:
            try:
                pages["stdin" if source == "-" else source] = (
                    sys.stdin.read() if source == "-" else Path(source).read_text())
            except OSError as e:
                fail(source, f"cannot be read: {e}")
        if pages:
            check_names_exist(pages)
    if args.names:
        for name in sorted({u.name for u in uses}):
            print(name)
    for line in failures:
        print(line)
    if failures:
        print(f"check_observability: {len(failures)} failure(s)", file=sys.stderr)
        return 1
    print(f"check_observability: ok ({len({u.name for u in uses})} metric names in "
          f"{len(DASHBOARDS)} dashboards and the rules)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
