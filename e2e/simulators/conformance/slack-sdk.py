"""Slack request signing and Block Kit against Slack's official Python SDK
(slack-sdk from PyPI).

  slack-sdk.py sign <out.json>   SignatureVerifier.generate_signature signs an
                                 event_callback, a url_verification and a
                                 block_actions form; the flow_slack test
                                 `sdk_fixture_round_trip` then checks the
                                 connector's Slack::verify accepts them (and
                                 refuses them tampered).
  slack-sdk.py check <in.json>   written by that test: the simulator's
                                 signatures pass SignatureVerifier.is_valid
                                 (another secret or body does not), and every
                                 Block Kit block the connector built parses
                                 with slack_sdk.models.blocks and passes the
                                 SDK's validate_json().
"""

import json
import sys
import time
import urllib.parse

from slack_sdk.models.blocks import Block
from slack_sdk.signature import SignatureVerifier

SECRET = "sdk-signing-secret-4f1c2a"
checked = 0


def check(condition, what):
    global checked
    if not condition:
        sys.exit("FAIL: " + what)
    checked += 1


def sign(path):
    verifier = SignatureVerifier(SECRET)
    now = str(int(time.time()))
    event = {
        "token": "x", "team_id": "T0SDK", "api_app_id": "A0SDK", "type": "event_callback",
        "event_id": "Ev0SDK1", "event_time": int(now),
        "event": {"type": "message", "channel_type": "im", "user": "U0SDK", "text": "signed by slack-sdk",
                  "channel": "D0SDK", "ts": now + ".000100"},
        "authorizations": [{"team_id": "T0SDK", "user_id": "UBOT", "is_bot": True}],
    }
    payload = {
        "type": "block_actions", "trigger_id": "1.2.abc", "team": {"id": "T0SDK", "domain": "sdk"},
        "user": {"id": "U0SDK", "username": "sdk"},
        "container": {"type": "message", "channel_id": "D0SDK", "message_ts": "1.2"},
        "actions": [{"type": "button", "action_id": "um-qr:0", "value": "yes",
                     "text": {"type": "plain_text", "text": "Yes"}, "action_ts": now + ".000200"}],
    }
    bodies = [
        ("event_callback", "application/json", json.dumps(event)),
        ("url_verification", "application/json",
         json.dumps({"token": "x", "challenge": "sdk-challenge", "type": "url_verification"})),
        ("block_actions", "application/x-www-form-urlencoded",
         urllib.parse.urlencode({"payload": json.dumps(payload)})),
    ]
    requests = []
    for kind, content_type, body in bodies:
        signature = verifier.generate_signature(timestamp=now, body=body)
        check(signature.startswith("v0="), kind + ": SDK signature is not v0=")
        requests.append({"kind": kind, "content_type": content_type, "timestamp": now,
                         "body": body, "signature": signature})
    json.dump({"signing_secret": SECRET, "requests": requests}, open(path, "w"))


def verify(path):
    fixture = json.load(open(path))
    verifier = SignatureVerifier(fixture["signing_secret"])
    other = SignatureVerifier(fixture["signing_secret"] + "x")
    for request in fixture["signed"]:
        body, ts, sig = request["body"], request["timestamp"], request["signature"]
        check(verifier.is_valid(body, ts, sig), request["kind"] + ": SDK rejects the simulator's signature")
        check(verifier.is_valid_request(body, {"x-slack-request-timestamp": ts, "x-slack-signature": sig}),
              request["kind"] + ": SDK rejects the simulator's headers")
        check(not other.is_valid(body, ts, sig), request["kind"] + ": another secret verifies")
        check(not verifier.is_valid(body + " ", ts, sig), request["kind"] + ": a tampered body verifies")
    for message in fixture["messages"]:
        for raw in message["blocks"]:
            block = Block.parse(raw)
            check(block is not None, message["what"] + ": SDK does not know block " + json.dumps(raw))
            try:
                block.validate_json()
            except Exception as error:  # SlackObjectFormationError
                sys.exit("FAIL: " + message["what"] + ": SDK refuses block " + json.dumps(raw) + ": " + str(error))
            checked_type = block.to_dict()["type"]
            check(checked_type == raw["type"], message["what"] + ": block type changed")
            if raw["type"] == "actions":
                for element, parsed in zip(raw["elements"], block.to_dict()["elements"]):
                    check(parsed.get("value") == element.get("value"), "button value lost")
                    check(parsed["action_id"] == element["action_id"], "action_id lost")


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    {"sign": sign, "check": verify}[mode](path)
    print(f"slack-sdk conformance ({mode}): {checked} checks passed")
