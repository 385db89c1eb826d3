#!/usr/bin/env python3
"""Writes the bad-input corpus under Tests/Fixtures/bad/ (inputs only; each NAME.expected is written by hand
and reviewed). Rerun after changing a case: python3 scripts/make-bad-fixtures.py"""
import os, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "bad")

def write(kind, name, data):
    d = os.path.join(ROOT, kind)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

HEAD = """name: bad-one
timezone: UTC
schedule:
  at: ["02:30"]
"""
ST_DEST = """destination:
  type: sailthru
  api_key: ${SAILTHRU_API_KEY}
  api_secret: ${SAILTHRU_API_SECRET}
"""
EXPORT = """goals:
  - export: { segment: vip, match: { email: email }, lists: [A] }
"""
IMPORT = """goals:
  - import:
      lists: [Newsletter]
      match: { email: email }
      fields:
        - { from: order_total, to: lifetime_spend, mode: sum }
"""
GOOD = HEAD + ST_DEST + EXPORT

def conn(name, text):
    write("config", name + ".yaml", text)

# --- connection files -------------------------------------------------------------------------
conn("unknown-top-key", GOOD + "retries: 3\n")
conn("typo-top-key", GOOD.replace("timezone:", "timezon:"))
conn("unknown-schedule-key", GOOD.replace('  at: ["02:30"]\n', '  at: ["02:30"]\n  every: 5m\n'))
conn("unknown-destination-key", GOOD.replace("  type: sailthru\n", "  type: sailthru\n  region: eu\n"))
conn("unknown-export-key", GOOD.replace("lists: [A] }", "lists: [A], color: red }"))
conn("unknown-import-key", HEAD + ST_DEST + IMPORT.replace("      lists:", "      segment: vip\n      lists:"))
conn("key-not-for-destination-type", GOOD.replace("  type: sailthru\n", "  type: sailthru\n  folder: /in\n"))
conn("name-is-a-list", GOOD.replace("name: bad-one", "name: [a, b]"))
conn("name-has-capitals", GOOD.replace("name: bad-one", "name: Bad_One"))
conn("name-empty", GOOD.replace("name: bad-one", "name: ''"))
conn("enabled-not-bool", GOOD + "enabled: maybe\n")
conn("schedule-is-text", GOOD.replace('schedule:\n  at: ["02:30"]\n', "schedule: daily\n"))
conn("at-is-mapping", GOOD.replace('  at: ["02:30"]', "  at: { hour: 2 }"))
conn("times-per-day-text", GOOD.replace('  at: ["02:30"]', "  times_per_day: often"))
conn("times-per-day-zero", GOOD.replace('  at: ["02:30"]', "  times_per_day: 0"))
conn("times-per-day-huge", GOOD.replace('  at: ["02:30"]', "  times_per_day: 99999999999999999999999"))
conn("goals-is-mapping", HEAD + ST_DEST + "goals: { export: { segment: vip } }\n")
conn("goals-empty", HEAD + ST_DEST + "goals: []\n")
conn("goal-both-import-export", HEAD + ST_DEST + "goals:\n  - import: { lists: [A], match: { email: email } }\n    export: { segment: vip, match: { email: email } }\n")
conn("max-removal-fraction-text", GOOD.replace("lists: [A] }", "lists: [A], max_removal_fraction: half }"))
conn("max-removal-fraction-range", GOOD.replace("lists: [A] }", "lists: [A], max_removal_fraction: 1.5 }"))
conn("unknown-zone", GOOD.replace("timezone: UTC", "timezone: Mars/Olympus"))
conn("zone-abbreviation", GOOD.replace("timezone: UTC", "timezone: CEST"))
conn("zone-typo", GOOD.replace("timezone: UTC", "timezone: Europe/Berln"))
conn("zone-empty", GOOD.replace("timezone: UTC", "timezone: ''"))
conn("zone-is-number", GOOD.replace("timezone: UTC", "timezone: [1]"))
conn("at-hour-25", GOOD.replace('"02:30"', '"25:00"'))
conn("at-minute-60", GOOD.replace('"02:30"', '"02:60"'))
conn("at-no-colon", GOOD.replace('"02:30"', '"0230"'))
conn("at-seconds", GOOD.replace('"02:30"', '"02:30:00"'))
conn("at-negative", GOOD.replace('"02:30"', '"-1:30"'))
conn("at-empty-list", GOOD.replace('["02:30"]', "[]"))
conn("at-second-item-bad", GOOD.replace('["02:30"]', '["02:30", "7pm"]'))
conn("once-bad-date", GOOD.replace('  at: ["02:30"]', '  once: "2026-13-40T09:00"'))
conn("cron-four-fields", GOOD.replace('  at: ["02:30"]', '  cron: "0 2 * *"'))
conn("cron-minute-out-of-range", GOOD.replace('  at: ["02:30"]', '  cron: "61 2 * * *"'))
conn("cron-bad-month-name", GOOD.replace('  at: ["02:30"]', '  cron: "0 2 * foo *"'))
conn("cron-backwards-range", GOOD.replace('  at: ["02:30"]', '  cron: "0 5-2 * * *"'))
conn("cron-zero-step", GOOD.replace('  at: ["02:30"]', '  cron: "*/0 * * * *"'))
conn("cron-empty-list-item", GOOD.replace('  at: ["02:30"]', '  cron: "0 1,,2 * * *"'))
conn("cron-huge-number", GOOD.replace('  at: ["02:30"]', '  cron: "0 99999999999999999999999 * * *"'))
conn("cron-with-at", GOOD.replace('  at: ["02:30"]', '  at: ["02:30"]\n  cron: "0 2 * * *"'))
conn("cron-and-once", GOOD.replace('  at: ["02:30"]', '  cron: "0 2 * * *"\n  once: "2026-12-24T09:00"'))
conn("schedule-no-times", GOOD.replace('  at: ["02:30"]', "  weekdays: [mon]"))
conn("weekdays-and-monthdays", GOOD.replace('  at: ["02:30"]', '  at: ["02:30"]\n  weekdays: [mon]\n  monthdays: [1]'))
conn("weekday-unknown", GOOD.replace('  at: ["02:30"]', '  at: ["02:30"]\n  weekdays: [mon, funday]'))
conn("monthday-32", GOOD.replace('  at: ["02:30"]', '  at: ["02:30"]\n  monthdays: [32]'))
conn("dst-gap-unknown", GOOD.replace('  at: ["02:30"]', '  at: ["02:30"]\n  dst: { gap: later }'))
conn("catch-up-unknown", GOOD.replace('  at: ["02:30"]', '  at: ["02:30"]\n  catch_up: all'))
conn("unset-var-api-key", GOOD.replace("${SAILTHRU_API_KEY}", "${FERRY_BADINPUT_UNSET_KEY}"))
conn("unset-var-base-url", GOOD.replace("  api_secret: ${SAILTHRU_API_SECRET}\n", "  api_secret: ${SAILTHRU_API_SECRET}\n  base_url: ${FERRY_BADINPUT_UNSET_URL}\n"))
conn("unclosed-var", GOOD.replace("  api_secret: ${SAILTHRU_API_SECRET}\n", "  api_secret: ${SAILTHRU_API_SECRET}\n  base_url: http://${HOST\n"))
conn("unset-var-sftp-host", HEAD + """destination:
  type: mapp
  host: ${FERRY_BADINPUT_UNSET_HOST}
  username: ferry
  password: ${MAPP_SFTP_PASSWORD}
  folder: /in
  host_key_sha256: SHA256:abc
goals:
  - export: { segment: vip, file_prefix: vip, columns: [{ property: email, header: user.Email }] }
""")
conn("secret-in-file", GOOD.replace("${SAILTHRU_API_SECRET}", "hunter2-plain"))
conn("secret-partly-var", GOOD.replace("${SAILTHRU_API_SECRET}", "prefix-${SAILTHRU_API_SECRET}"))
conn("sendgrid-key-in-file", HEAD + "destination:\n  type: sendgrid\n  api_key: SG.abcdef\ngoals:\n  - export: { segments: [vip], email: email }\n")
conn("sftp-password-in-file", HEAD + """destination:
  type: mapp
  host: 127.0.0.1
  username: ferry
  password: letmein
  folder: /in
  host_key_sha256: SHA256:abc
goals:
  - export: { segment: vip, file_prefix: vip, columns: [{ property: email, header: user.Email }] }
""")
conn("unknown-segment", GOOD.replace("segment: vip", "segment: vipp"))
conn("unknown-segment-sendgrid", HEAD + "destination:\n  type: sendgrid\n  api_key: ${SENDGRID_API_KEY}\ngoals:\n  - export: { segments: [vip, nobody], email: email }\n")
conn("unknown-segment-in-field", GOOD.replace("lists: [A] }", "lists: [A], fields: [{ segments: [ghost], to: segs }] }"))
conn("unknown-merge-mode", HEAD + ST_DEST + IMPORT.replace("mode: sum", "mode: summ"))
conn("merge-mode-missing", HEAD + ST_DEST + IMPORT.replace(", mode: sum", ""))
conn("import-field-to-identifier", HEAD + ST_DEST + IMPORT.replace("to: lifetime_spend", "to: email"))
conn("import-match-not-identifier", HEAD + ST_DEST + IMPORT.replace("match: { email: email }", "match: { email: city }"))
conn("import-on-sendgrid", HEAD + "destination:\n  type: sendgrid\n  api_key: ${SENDGRID_API_KEY}\n" + IMPORT)
conn("duplicate-name", GOOD.replace("name: bad-one", "name: good-one"))
conn("duplicate-key", GOOD.replace("timezone: UTC\n", "timezone: UTC\ntimezone: UTC\n"))
conn("conflicting-goals", HEAD + ST_DEST + "goals:\n  - export: { segment: vip, match: { email: email }, lists: [A] }\n  - export: { segment: newsletter, match: { email: email }, lists: [A] }\n")
conn("destination-type-unknown", GOOD.replace("type: sailthru", "type: mailchimp"))
conn("destination-missing", HEAD + EXPORT)
conn("base-url-not-http", GOOD.replace("  api_secret: ${SAILTHRU_API_SECRET}\n", "  api_secret: ${SAILTHRU_API_SECRET}\n  base_url: ftp://example.com\n"))
conn("port-out-of-range", HEAD + """destination:
  type: mapp
  host: 127.0.0.1
  port: 70000
  username: ferry
  password: ${MAPP_SFTP_PASSWORD}
  folder: /in
  host_key_sha256: SHA256:abc
goals:
  - export: { segment: vip, file_prefix: vip, columns: [{ property: email, header: user.Email }] }
""")
conn("mapp-prefix-path", HEAD + """destination:
  type: mapp
  host: 127.0.0.1
  username: ferry
  password: ${MAPP_SFTP_PASSWORD}
  folder: /in
  host_key_sha256: SHA256:abc
goals:
  - export: { segment: vip, file_prefix: ../etc/x, columns: [{ property: email, header: user.Email }] }
""")
conn("notify-not-email", GOOD + "notify: { email: [ops] }\n")
conn("yaml-syntax-tab", GOOD.replace("  type: sailthru", "\ttype: sailthru"))
conn("yaml-syntax-unclosed-bracket", GOOD.replace('["02:30"]', '["02:30"'))
conn("yaml-syntax-unclosed-quote", GOOD.replace('"02:30"]', '"02:30]'))
conn("yaml-bad-indent", GOOD.replace("  api_secret:", "    api_secret:"))
conn("yaml-undefined-alias", GOOD + "description: *nowhere\n")
conn("top-is-list", "- name: x\n- timezone: UTC\n")
conn("top-is-scalar", "just some words\n")
conn("empty-file", "")
conn("only-comments", "# nothing here\n")
write("config", "invalid-utf8-value.yaml", GOOD.encode().replace(b"bad-one", b"bad-\xff-one"))
write("config", "invalid-utf8-line-5.yaml", GOOD.encode().replace(b"destination:\n", b"destination: # caf\xc3\n"))
write("config", "utf16-bom.yaml", "\ufeff".encode("utf-16-le") + GOOD.encode("utf-16-le"))
write("config", "nul-bytes.yaml", GOOD.encode() + b"description: a\x00b\n")
# Deeply nested and exploding documents.
conn("deep-nesting-flow", GOOD + "description: " + "[" * 5000 + "]" * 5000 + "\n")
conn("deep-nesting-block", GOOD + "description:\n" + "".join("  " * i + "k%d:\n" % i for i in range(1, 200)) + "  " * 200 + "v\n")
bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
for i, name in enumerate("bcdefghij"):
    prev = "abcdefghij"[i]
    bomb.append("%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]" % (name, name, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev))
conn("alias-bomb", "\n".join(bomb) + "\n" + GOOD)
conn("huge-description", GOOD + "description: " + "x" * (1 << 20) + "\n")
conn("huge-key", GOOD + "k" * 70000 + ": 1\n")
conn("many-keys", GOOD + "".join("extra_%d: 1\n" % i for i in range(3000)))

# --- segments.yaml ----------------------------------------------------------------------------
def seg(name, text):
    write("segments", name + ".yaml", text)

seg("unknown-top-key", "segments:\n  - name: vip\nrules: []\n")
seg("segments-not-list", "segments: { name: vip }\n")
seg("missing-segments-key", "groups:\n  - name: vip\n")
seg("duplicate-segment", "segments:\n  - name: vip\n  - name: newsletter\n  - name: vip\n")
seg("name-bad-chars", "segments:\n  - name: VIP Customers\n")
seg("name-missing", "segments:\n  - all: [{ property: a, eq: 1 }]\n")
seg("unknown-operator", "segments:\n  - name: vip\n    all:\n      - { property: spend, greater: 100 }\n")
seg("two-operators", "segments:\n  - name: vip\n    all:\n      - { property: spend, gt: 1, lt: 5 }\n")
seg("no-operator", "segments:\n  - name: vip\n    all:\n      - { property: spend }\n")
seg("gt-not-number", "segments:\n  - name: vip\n    all:\n      - { property: spend, gt: lots }\n")
seg("before-bad-date", "segments:\n  - name: vip\n    all:\n      - { property: since, before: yesterday }\n")
seg("within-days-negative", "segments:\n  - name: recent\n    all:\n      - { property: seen, within_days: -3 }\n")
seg("in-empty", "segments:\n  - name: vip\n    all:\n      - { property: city, in: [] }\n")
seg("eq-mapping", "segments:\n  - name: vip\n    all:\n      - { property: city, eq: { a: 1 } }\n")
seg("all-and-any", "segments:\n  - name: vip\n    all: [{ property: a, exists: true }]\n    any: [{ property: b, exists: true }]\n")
seg("all-empty", "segments:\n  - name: vip\n    all: []\n")
seg("rule-is-text", "segments:\n  - name: vip\n    all:\n      - spend > 100\n")
seg("exists-not-bool", "segments:\n  - name: vip\n    all:\n      - { property: a, exists: perhaps }\n")
seg("deep-nesting", "segments:\n  - name: deep\n    all:\n" + "".join("  " * (3 + i) + "- any:\n" for i in range(80)) + "  " * 83 + "- { property: a, exists: true }\n")
seg("alias-bomb", "\n".join(bomb).replace("a: &a", "x_a: &a", 1) + "\nsegments:\n  - name: vip\n")
seg("yaml-syntax", "segments:\n  - name: vip\n    all: [{ property: a, eq: 1 }\n")
write("segments", "invalid-utf8.yaml", b"segments:\n  - name: vip\n    description: \xe2\x28\xa1\n")
seg("empty", "")

# --- profile files (ferry profiles load) ------------------------------------------------------
def prof(name, data):
    write("profiles", name, data)

prof("not-an-object.jsonl", '{"id": "p1", "email": "a@example.com"}\n[1, 2, 3]\n"text"\n42\nnull\n{"id": "p2", "email": "b@example.com"}\n')
prof("not-json.jsonl", '{"id": "p1", "email": "a@example.com"}\n{id: p2}\n{"id": "p3",\n{"id": "p4", "email": "d@example.com"}\n')
prof("nested-object.jsonl", '{"id": "p1", "email": "a@example.com", "address": {"city": "Berlin"}}\n{"id": "p2", "email": "b@example.com"}\n')
prof("list-of-lists.jsonl", '{"id": "p1", "tags": [["a"], ["b"]]}\n{"id": "p2", "email": "b@example.com"}\n')
prof("id-wrong-type.jsonl", '{"id": true, "email": "a@example.com"}\n{"id": {"x": 1}}\n{"id": "p3", "email": "c@example.com"}\n')
prof("empty-key.jsonl", '{"id": "p1", "": "x"}\n{"id": "p2", "email": "b@example.com"}\n')
prof("invalid-utf8.jsonl", b'{"id": "p1", "email": "a@example.com"}\n{"id": "p2", "city": "M\xfcnchen"}\n{"id": "p3", "email": "c@example.com"}\n')
prof("overlong-utf8.jsonl", b'{"id": "p1", "city": "\xc0\xaf"}\n{"id": "p2", "email": "b@example.com"}\n')
prof("huge-line.jsonl", '{"id": "p1", "email": "a@example.com"}\n{"id": "p2", "bio": "' + "y" * (1 << 20) + '"}\n{"id": "p3", "email": "c@example.com"}\n')
prof("huge-value.jsonl", '{"id": "p1", "email": "a@example.com"}\n{"id": "p2", "bio": "' + "y" * 70000 + '"}\n')
prof("deep-json.jsonl", '{"id": "p1", "email": "a@example.com"}\n{"id": "p2", "x": ' + "[" * 10000 + "]" * 10000 + '}\n')
prof("truncated-last-line.jsonl", '{"id": "p1", "email": "a@example.com"}\n{"id": "p2", "email": "b@exa')
prof("empty.jsonl", "")
prof("blank-lines-only.jsonl", "\n   \n\t\n")
prof("bare-identifiers-missing.jsonl", '{"city": "Berlin"}\n{"id": "p2", "email": "b@example.com"}\n')
prof("nul-in-line.jsonl", b'{"id": "p1", "email": "a@example.com"}\n\x00\x00\x00\n')
prof("wrong-field-count.csv", "id,email,city\np1,a@example.com,Berlin\np2,b@example.com\np3,c@example.com,Paris,extra\np4,d@example.com,Rome\n")
prof("unterminated-quote.csv", 'id,email,city\np1,a@example.com,Berlin\np2,b@example.com,"Paris\np3,c@example.com,Rome\n')
prof("quote-in-unquoted.csv", 'id,email,city\np1,a@example.com,Ber"lin\np2,b@example.com,Paris\n')
prof("invalid-utf8.csv", b"id,email,city\np1,a@example.com,M\xfcnchen\np2,b@example.com,Paris\n")
prof("huge-field.csv", "id,email,bio\np1,a@example.com,short\np2,b@example.com," + "z" * (1 << 20) + "\np3,c@example.com,short\n")
prof("empty.csv", "")
prof("header-only.csv", "id,email,city\n")
prof("duplicate-header.csv", "id,email,email\np1,a@example.com,b@example.com\n")
prof("header-unterminated.csv", 'id,"email,city\np1,a@example.com,Berlin\n')
prof("header-invalid-utf8.csv", b"id,e\xffmail\np1,a@example.com\n")
prof("crlf-mixed-short-row.csv", "id,email,city\r\np1,a@example.com,Berlin\r\np2\r\n")

# --- Sailthru list exports (import goal: CSV + merge) -----------------------------------------
def st(name, data):
    write("sailthru-export", name, data)

H = "Profile Id,Email,order_total,interests\r\n"
st("short-row.csv", H + "s1,ok1@example.com,10,ski\r\ns2,short@example.com,5\r\ns3,ok3@example.com,1,wine\r\n")
st("long-row.csv", H + "s1,ok1@example.com,10,ski,extra\r\ns2,ok2@example.com,5,wine\r\n")
st("unterminated-quote.csv", H + "s1,ok1@example.com,10,ski\r\ns2,q@example.com,5,\"never closed\r\n")
st("quote-inside-field.csv", H + "s1,ok1@example.com,10,ski\r\ns2,bad@example.com,5,sk\"i\r\n")
st("invalid-utf8.csv", H.encode() + b"s1,ok1@example.com,10,ski\r\ns2,u@example.com,5,caf\xe9\r\ns3,ok3@example.com,1,wine\r\n")
st("huge-cell.csv", H + "s1,ok1@example.com,10,ski\r\ns2,big@example.com,5," + "w" * (1 << 20) + "\r\ns3,ok3@example.com,1,wine\r\n")
st("non-numeric-sum.csv", H + "s1,ok1@example.com,10,ski\r\ns2,sum@example.com,abc,ski\r\ns3,ok3@example.com,1e400,wine\r\n")
st("missing-identifier-column.csv", "Profile Id,order_total\r\ns1,10\r\n")
st("empty.csv", "")
st("header-unreadable.csv", b"Profile Id,Em\xffail,order_total\r\ns1,a@example.com,1\r\n")
st("empty-identifier.csv", H + "s1,,10,ski\r\ns2,ok2@example.com,5,wine\r\n")
st("blank-lines-and-crlf.csv", H + "\r\n\r\ns1,ok1@example.com,10,ski\r\n\r\ns2,x@example.com\r\n")
st("sum-overflow.csv", H + "s1,big@example.com,1e308,ski\r\ns2,big@example.com,1e308,ski\r\ns3,ok3@example.com,1,wine\r\n")
prof("number-overflow.jsonl", '{"id": "p1", "spend": 1e400}\n{"id": "p2", "spend": -1e999}\n{"id": "p3", "email": "c@example.com"}\n')
seg("gt-infinite", "segments:\n  - name: vip\n    all:\n      - { property: spend, gt: 1e400 }\n")
