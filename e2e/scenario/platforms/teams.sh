# Microsoft Teams steps of e2e/scenario/platforms-genesys.sh (sourced;
# $psim is the Bot Framework / Teams channel simulator, $webhook_url the
# Tenant's messaging endpoint).
teams_app=11111111-2222-3333-4444-555555555555
teams_password=scenario-teams-bot-client-secret
teams_conversation="a:1scenario-personal-chat"
p_media="Microsoft Teams"
p_secrets="$teams_password"
p_sample_sed="s/REPLACE-with-the-bot-client-secret/$teams_password/"

teams_activity() { # JSON fields of /__sim/teams/activities; prints the delivery
  post "$psim/__sim/teams/activities" \
    "{\"app_id\":\"$teams_app\",\"conversation_id\":\"$teams_conversation\",\"user_id\":\"29:1ana\",\"user_name\":\"Ana\",$1}" \
    || fail "[teams] activity not sent"
}
teams_say() {
  local delivery
  delivery=$(teams_activity "$1")
  case "$(jqget "d['status']" <<<"$delivery")" in 200|201|202) ;; *) fail "[teams] activity not accepted: $delivery" ;; esac
}

p_prepare() {
  post "$psim/__sim/teams/bots" "{\"app_id\":\"$teams_app\",\"password\":\"$teams_password\",\"name\":\"ACME Teams\"}" >/dev/null
}

# The administrator pastes the messaging endpoint into the Azure Bot.
p_webhook_ready() {
  post "$psim/__sim/teams/endpoint" "{\"app_id\":\"$teams_app\",\"url\":\"$webhook_url\"}" >/dev/null
}

p_guest_text() { teams_say "\"text\":\"$1\",\"id\":\"1700000000001\""; }
p_redelivered_text() { p_guest_text "$1"; }
p_guest_image() { teams_say "\"text\":\"\",\"image_base64\":\"$(base64 -w0 "$1")\",\"mime\":\"image/png\""; }

teams_sent() { curl -fsS "$psim/__sim/teams/records?kind=sent" | jqget "json.dumps([s['activity'] for s in d if s['conversation_id'] == '$teams_conversation'])"; }

p_check_sent() { # text image-url prompt label...
  poll 30 "[teams] 3 activities not sent: $(teams_sent)" \
    test "$(teams_sent | jqget 'len(d)')" -ge 3
  local sent
  sent=$(teams_sent)
  python3 - "$sent" "$@" <<'PY' || fail "[teams] sent activities: $sent"
import json, sys
a, text, image, prompt, *labels = json.loads(sys.argv[1]), *sys.argv[2:]
assert all(x["type"] == "message" for x in a), a
assert a[0]["text"] == text, a[0]
assert a[1]["attachments"][0]["contentType"] == "image/png" and a[1]["attachments"][0]["contentUrl"] == image, a[1]
assert a[2]["text"] == prompt, a[2]
actions = a[2]["suggestedActions"]["actions"]
assert [x["title"] for x in actions] == labels and all(x["type"] == "imBack" for x in actions), actions
PY
}

# An imBack suggested action posts its value as the guest's text.
p_tap_quick_reply() { # label payload
  local value
  value=$(teams_sent | jqget "[x['value'] for x in d[2]['suggestedActions']['actions'] if x['title'] == '$1'][0]")
  teams_say "\"text\":\"$value\""
}

# A tampered token: a real header and claims with the signature of other bytes.
p_tampered_webhook() { teams_activity '"text":"forged","token_fault":"bad_signature"' | jqget "d['status']"; }
