#!/usr/bin/env python3
"""Proposes and writes the `google.api.http` option of every RPC that has none.

    scripts/proto-http-rules.py           print the proposed rules (review them)
    scripts/proto-http-rules.py --write   add them to proto/itsm/*/v1/*.proto

Rules follow Google's API improvement proposals: Get -> GET /v1/{name=...},
List -> GET /v1/<collection> or /v1/{parent=...}/<collection>, Create -> POST
with the resource as body, Update -> PATCH /v1/{<resource>.name=...} with the
resource as body, Delete -> DELETE, anything else a custom method POST
/v1/{name=...}:verb with body "*". Resource name patterns come from the quoted
examples in the `name` comments ("incidents/INC0000042" -> incidents/*).
The guesses are a start: OVERRIDES holds what review decided, and the script
refuses two rules with the same HTTP method and path shape. An RPC that
already has an http option is left alone, so the protos stay the source.
Run `buf format -w` afterwards.
"""
import glob
import re
import sys

def parse(path):
    src = open(path).read()
    lines = src.split('\n')
    msgs = {}; depth = 0; cur = None; comment = []
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith('//'):
            comment.append(s[2:].strip()); continue
        m = re.match(r'message (\w+) \{', s)
        if depth == 0 and m:
            cur = m.group(1); msgs[cur] = {'fields': [], 'comment': ' '.join(comment)}
        if depth == 1 and cur:
            fm = re.match(r'(repeated |optional )?([\w.<>, ]+?) (\w+) = \d+', s)
            if fm and not s.startswith(('message','enum','oneof','reserved','option')):
                msgs[cur]['fields'].append({'label': (fm.group(1) or '').strip(), 'type': fm.group(2), 'name': fm.group(3), 'comment': ' '.join(comment)})
            elif s.startswith('oneof'):
                pass
        if depth == 2 and cur and re.match(r'(repeated |optional )?([\w.<>, ]+?) (\w+) = \d+', s) and prev_oneof:
            fm = re.match(r'(repeated |optional )?([\w.<>, ]+?) (\w+) = \d+', s)
            msgs[cur]['fields'].append({'label': '', 'type': fm.group(2), 'name': fm.group(3), 'comment': ' '.join(comment), 'oneof': True})
        if depth == 1 and s.startswith('oneof'): prev_oneof = True
        elif depth == 1: prev_oneof = False
        opens = s.count('{') - s.count('}')
        if not s.startswith('//'):
            depth += s.count('{') - s.count('}')
            if depth == 0: cur = None
        comment = []
    rpcs = []
    for m in re.finditer(r'rpc\s+(\w+)\s*\(\s*([\w.]+)\s*\)\s*returns\s*\(\s*([\w.]+)\s*\)\s*;', src):
        rpcs.append({'name': m.group(1), 'req': m.group(2), 'resp': m.group(3), 'span': m.span()})
    svc = re.search(r'service (\w+) \{', src)
    pkg = re.search(r'package ([\w.]+);', src).group(1)
    return {'path': path, 'src': src, 'msgs': msgs, 'rpcs': rpcs, 'service': svc.group(1) if svc else None, 'package': pkg}
prev_oneof = False


def camel(s):
    return s[0].lower() + s[1:]


def quoted_pattern(comment):
    m = re.search(r'"([A-Za-z][\w\-]*(?:/[^"\s]*)?)"', comment)
    if not m:
        return None
    segs = m.group(1).split('/')
    if len(segs) == 1:
        return segs[0] if re.match(r'^[a-z][A-Za-z]*$', segs[0]) else None
    out = []
    for i, s in enumerate(segs):
        if i % 2 == 0:
            if not re.match(r'^[a-z][A-Za-z]*$', s):
                return None
            out.append(s)
        else:
            out.append('*')
    return '/'.join(out)


def resource_pattern(msg):
    if not msg:
        return None
    for fl in msg['fields']:
        if fl['name'] == 'name' and fl['type'] == 'string':
            return quoted_pattern(fl['comment'])
    return None


def field(msg, name):
    return next((fl for fl in msg['fields'] if fl['name'] == name), None)


def audit(*parents):
    return [('get', '/v1/{parent=%s}/audit' % p, None) for p in parents]


def journal(method, body, *parents):
    return [(method, '/v1/{parent=%s}/journal' % p, body) for p in parents]


# Decided by review: a rule, or a list (the first is the main binding, the
# others additional_bindings). Keys are "Service.Method".
OVERRIDES = {
    # Two practices own a collection called approvalPolicies: the practice's
    # prefix keeps their REST paths apart (the resource names stay as they are).
    'ChangeService.ListApprovalPolicies': ('get', '/v1/change/approvalPolicies', None),
    'ChangeService.GetApprovalPolicy': ('get', '/v1/change/{name=approvalPolicies/*}', None),
    'ChangeService.CreateApprovalPolicy': ('post', '/v1/change/approvalPolicies', 'policy'),
    'ChangeService.UpdateApprovalPolicy': ('patch', '/v1/change/{policy.name=approvalPolicies/*}', 'policy'),
    'ChangeService.DeleteApprovalPolicy': ('delete', '/v1/change/{name=approvalPolicies/*}', None),
    'RequestService.ListApprovalPolicies': ('get', '/v1/catalog/approvalPolicies', None),
    'RequestService.GetApprovalPolicy': ('get', '/v1/catalog/{name=approvalPolicies/*}', None),
    'RequestService.CreateApprovalPolicy': ('post', '/v1/catalog/approvalPolicies', 'policy'),
    'RequestService.UpdateApprovalPolicy': ('patch', '/v1/catalog/{policy.name=approvalPolicies/*}', 'policy'),
    'RequestService.DeleteApprovalPolicy': ('delete', '/v1/catalog/{name=approvalPolicies/*}', None),
    'RequestService.ListApprovalPolicyVersions': ('get', '/v1/catalog/{parent=approvalPolicies/*}/versions', None),
    'RequestService.GetApprovalPolicyVersion': ('get', '/v1/catalog/{name=approvalPolicies/*/versions/*}', None),
    # Transition tables: one per practice.
    'ChangeService.ListTransitions': ('get', '/v1/changeTransitions', None),
    'IncidentService.ListTransitions': ('get', '/v1/incidentTransitions', None),
    'ProblemService.ListTransitions': ('get', '/v1/problemTransitions', None),
    # Journals ("<ticket>/journal/<id>") and audit trails ("<resource>/audit/<id>").
    'ChangeService.AddJournalEntry': journal('post', '*', 'changes/*'),
    'ChangeService.ListJournalEntries': journal('get', None, 'changes/*'),
    'IncidentService.AddJournalEntry': journal('post', '*', 'incidents/*'),
    'IncidentService.ListJournalEntries': journal('get', None, 'incidents/*'),
    'ProblemService.AddJournalEntry': journal('post', '*', 'problems/*'),
    'ProblemService.ListJournalEntries': journal('get', None, 'problems/*'),
    'RequestService.AddJournalEntry': journal(
        'post', '*', 'requests/*', 'requests/*/items/*', 'requests/*/items/*/tasks/*'),
    'RequestService.ListJournalEntries': journal(
        'get', None, 'requests/*', 'requests/*/items/*', 'requests/*/items/*/tasks/*'),
    'ChangeService.ListAuditEntries': audit('changes/*') + [
        ('get', '/v1/change/{parent=approvalPolicies/*}/audit', None)] + audit(
        'riskRules/*', 'blackoutWindows/*', 'maintenanceWindows/*', 'changeTemplates/*',
        'riskQuestionnaire', 'changeSettings'),
    'CmdbService.ListAuditEntries': audit(
        'classes/*', 'relationshipTypes/*', 'discoverySources/*', 'precedenceRules/*', 'cmdbSettings'),
    'IncidentService.ListAuditEntries': audit('incidents/*'),
    'KnowledgeService.ListAuditEntries': audit(
        'articles/*', 'knowledgeBases/*', 'knowledgeBases/*/categories/*'),
    'ProblemService.ListAuditEntries': audit('problems/*', 'knownErrors/*'),
    'RequestService.ListAuditEntries': audit(
        'requests/*', 'requests/*/items/*', 'requests/*/items/*/tasks/*', 'catalogCategories/*',
        'catalogItems/*', 'fulfillmentPlans/*') + [
        ('get', '/v1/catalog/{parent=approvalPolicies/*}/audit', None)],
    'SlaService.ListAuditEntries': audit('calendars/*', 'slaDefinitions/*'),
    # Changes.
    'ChangeService.CheckDeployment': ('post', '/v1/changes:checkDeployment', '*'),
    # CMDB.
    'CmdbService.BatchGetCis': ('get', '/v1/cis:batchGet', None),
    'CmdbService.GetCiAsOf': ('get', '/v1/{name=cis/*}:asOf', None),
    'CmdbService.ListCiHistory': ('get', '/v1/{parent=cis/*}/history', None),
    'CmdbService.AnalyzeImpact': ('post', '/v1/cis:analyzeImpact', '*'),
    'CmdbService.ReportCis': ('post', '/v1/cis:report', '*'),
    'CmdbService.DiffBaseline': ('get', '/v1/{baseline=baselines/*}:diff', None),
    # Identity.
    'IdentityService.CreateApiKey': ('post', '/v1/apiKeys', 'api_key'),
    'IdentityService.GetApiKey': ('get', '/v1/{name=apiKeys/*}', None),
    'IdentityService.RevokeApiKey': ('post', '/v1/{name=apiKeys/*}:revoke', '*'),
    'IdentityService.VerifyApiKey': ('post', '/v1/apiKeys:verify', '*'),
    'IdentityService.AddGroupMember': ('post', '/v1/{group=groups/*}:addMember', '*'),
    'IdentityService.RemoveGroupMember': ('post', '/v1/{group=groups/*}:removeMember', '*'),
    'IdentityService.CheckMembership': ('get', '/v1/{group=groups/*}:checkMembership', None),
    # Incidents.
    'IncidentService.IngestAlerts': ('post', '/v1/alerts:ingest', '*'),
    # Knowledge.
    'KnowledgeService.CompareArticleVersions': ('get', '/v1/{name=articles/*}:compareVersions', None),
    'KnowledgeService.RestoreArticleVersion': ('post', '/v1/{name=articles/*}:restoreVersion', '*'),
    'KnowledgeService.SearchArticles': ('get', '/v1/articles:search', None),
    'KnowledgeService.SuggestArticles': ('get', '/v1/articles:suggest', None),
    # Problems.
    'ProblemService.LinkIncidents': ('post', '/v1/{parent=problems/*}/incidents:link', '*'),
    'ProblemService.UnlinkIncident': ('delete', '/v1/{name=problems/*/incidents/*}', None),
    'ProblemService.MatchKnownErrors': ('post', '/v1/knownErrors:match', '*'),
    # Requests.
    'RequestService.SubmitOrder': ('post', '/v1/requests:submitOrder', '*'),
    'RequestService.CancelRequest': ('post', '/v1/{name=requests/*}:cancel', '*'),
    # SLA.
    'SlaService.ListCalendarVersions': ('get', '/v1/{name=calendars/*}/versions', None),
    'SlaService.ListSlaDefinitionVersions': ('get', '/v1/{name=slaDefinitions/*}/versions', None),
    # A calendar in the path, or none (24x7, or the calendar in the body).
    'SlaService.AddBusinessTime': [
        ('post', '/v1/{calendar=calendars/*}:addBusinessTime', '*'),
        ('post', '/v1/calendars:addBusinessTime', '*')],
    'SlaService.MeasureBusinessTime': [
        ('post', '/v1/{calendar=calendars/*}:measureBusinessTime', '*'),
        ('post', '/v1/calendars:measureBusinessTime', '*')],
    'SlaService.ExplainTaskSla': ('get', '/v1/{name=taskSlas/*}:explain', None),
    'SlaService.RecomputeTicketSlas': ('post', '/v1/taskSlas:recomputeTicket', '*'),
    'SlaService.RecomputeTaskSlas': ('post', '/v1/taskSlas:recompute', '*'),
}


def guess(pkg, resolve, res, r):
    name = r['name']
    req, resp = resolve(pkg, r['req']), resolve(pkg, r['resp'])
    verb = re.match(r'[A-Z][a-z]+', name).group(0)
    noun = name[len(verb):]
    rp = resource_pattern(resp)
    namef, parentf = field(req, 'name'), field(req, 'parent')
    target = next((rn for rn in sorted(res, key=len, reverse=True) if rn in name), None)
    tp = res.get(target)
    if verb == 'Get':
        if namef:
            return ('get', '/v1/{name=%s}' % (rp or quoted_pattern(namef['comment']) or tp), None)
        if rp and '*' not in rp:
            return ('get', '/v1/' + rp, None)
        return ('get', '/v1/' + camel(noun), None)
    if verb == 'List':
        item = None
        for fl in (resp['fields'] if resp else []):
            if fl['label'] == 'repeated':
                item = resolve(pkg, fl['type'])
                break
        ip = resource_pattern(item)
        if ip and ip.count('/') >= 3 and parentf:
            pp, coll = ip.rsplit('/', 2)[0], ip.rsplit('/', 2)[1]
            return ('get', '/v1/{parent=%s}/%s' % (pp, coll), None)
        if ip and ip.count('/') == 1 and not parentf:
            return ('get', '/v1/' + ip.split('/')[0], None)
        return ('get', '/v1/' + camel(noun), None) if not parentf else None
    if verb in ('Create', 'Update') and resp and rp:
        rf = next((fl for fl in req['fields'] if resolve(pkg, fl['type']) is resp), None)
        if rf and verb == 'Create':
            if rp.count('/') >= 3 and parentf:
                pp, coll = rp.rsplit('/', 2)[0], rp.rsplit('/', 2)[1]
                return ('post', '/v1/{parent=%s}/%s' % (pp, coll), rf['name'])
            return ('post', '/v1/' + rp.split('/')[0], rf['name'])
        if rf:
            return ('patch', '/v1/{%s.name=%s}' % (rf['name'], rp), rf['name'])
    if verb == 'Delete' and namef:
        p = res.get(noun) or quoted_pattern(namef['comment'])
        if p:
            return ('delete', '/v1/{name=%s}' % p, None)
    bind = namef or parentf
    if bind:
        p = quoted_pattern(bind['comment']) or (tp if namef else None) or rp
        cverb = camel(name.replace(target, '', 1)) if target else camel(name)
        if p:
            return ('post', '/v1/{%s=%s}:%s' % (bind['name'], p, cverb), '*')
    return None


def shape(rule):
    """The method and path with every variable replaced by its pattern."""
    return rule[0], re.sub(r'\{[\w.]+=([^}]*)\}', r'\1', rule[1])


def render(rules):
    def one(rule, indent):
        pad = ' ' * indent
        text = '%s%s: "%s"\n' % (pad, rule[0], rule[1])
        if rule[2]:
            text += '%sbody: "%s"\n' % (pad, rule[2])
        return text
    main, extra = rules[0], rules[1:]
    text = '    option (google.api.http) = {\n' + one(main, 6)
    for rule in extra:
        text += '      additional_bindings {\n' + one(rule, 8) + '      }\n'
    return text + '    };\n'


def main():
    files = [parse(p) for p in sorted(glob.glob('proto/itsm/*/v1/*.proto'))]
    allmsgs = {}
    for f in files:
        for n, m in f['msgs'].items():
            allmsgs[f['package'] + '.' + n] = m

    def resolve(pkg, t):
        if t.startswith('itsm.'):
            return allmsgs.get(t)
        return allmsgs.get(pkg + '.' + t)

    seen, failed, planned = {}, False, {}
    for f in files:
        res = {n: p for n, m in f['msgs'].items()
               if not n.endswith('Request') and (p := resource_pattern(m))}
        for r in f['rpcs']:
            key = '%s.%s' % (f['service'], r['name'])
            rules = OVERRIDES.get(key) or guess(f['package'], resolve, res, r)
            rules = rules if isinstance(rules, list) else [rules] if rules else []
            if not rules or any('None' in x[1] or '??' in x[1] for x in rules):
                print('NO RULE  %s: add it to OVERRIDES' % key, file=sys.stderr)
                failed = True
                continue
            for rule in rules:
                if shape(rule) in seen:
                    print('CLASH    %s and %s: %s %s' % (key, seen[shape(rule)], *shape(rule)), file=sys.stderr)
                    failed = True
                seen[shape(rule)] = key
                print('%-48s %-6s %-60s %s' % (key, rule[0].upper(), rule[1], rule[2] or ''))
            planned[(f['path'], r['name'])] = rules
    if failed:
        sys.exit(1)
    if '--write' in sys.argv:
        for f in files:
            src, out, last = f['src'], [], 0
            if not f['rpcs']:
                continue
            for r in f['rpcs']:
                start, end = r['span']
                out.append(src[last:end - 1].rstrip() + ' {\n' + render(planned[(f['path'], r['name'])]) + '  }')
                last = end
            out.append(src[last:])
            text = ''.join(out)
            if 'import "google/api/annotations.proto";' not in text:
                text = re.sub(r'(package [\w.]+;\n\n)', r'\1import "google/api/annotations.proto";\n', text, count=1)
            with open(f['path'], 'w') as fh:
                fh.write(text)


if __name__ == '__main__':
    main()
