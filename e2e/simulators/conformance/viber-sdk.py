"""Checks the Viber simulator's callbacks and the connector's send bodies
against Viber's official Python SDK (viberbot from PyPI):

- every callback the simulator signs passes the SDK's verify_signature
  (hex HMAC-SHA256 with the auth token), a tampered body or another token
  does not, and parse_request turns it into the right request class with
  the fields the connector reads;
- every send_message body the connector builds is a message the SDK's
  get_message factory reads back and validate() accepts, with keyboard,
  tracking_data, rich_media and min_api_version intact.

Usage: viber-sdk.py <fixture.json>  (written by the flow_viber test
sdk_fixture_of_signed_callbacks_and_send_bodies)
"""

import json
import sys

from viberbot import Api
from viberbot.api.bot_configuration import BotConfiguration
from viberbot.api.messages import get_message
from viberbot.api.messages.location_message import LocationMessage
from viberbot.api.messages.picture_message import PictureMessage
from viberbot.api.messages.rich_media_message import RichMediaMessage
from viberbot.api.messages.sticker_message import StickerMessage
from viberbot.api.messages.text_message import TextMessage
from viberbot.api.viber_requests import (
    ViberConversationStartedRequest,
    ViberMessageRequest,
    ViberSubscribedRequest,
    ViberUnsubscribedRequest,
)

fixture = json.load(open(sys.argv[1]))
token = fixture["auth_token"]
api = Api(BotConfiguration(name="ACME", avatar=None, auth_token=token))
other = Api(BotConfiguration(name="ACME", avatar=None, auth_token=token + "x"))
checked = 0


def check(condition, what):
    global checked
    if not condition:
        sys.exit("FAIL: " + what)
    checked += 1


expected_class = {
    "message": ViberMessageRequest,
    "subscribed": ViberSubscribedRequest,
    "conversation_started": ViberConversationStartedRequest,
    "unsubscribed": ViberUnsubscribedRequest,
}
for callback in fixture["callbacks"]:
    body = callback["body"].encode("utf-8")
    signature = callback["signature"]
    event = callback["event"]
    check(api.verify_signature(body, signature), event + ": SDK rejects the simulator's signature")
    check(not other.verify_signature(body, signature), event + ": another token verifies")
    tampered = body.replace(b'"timestamp":', b'"timestamp":1')
    check(not api.verify_signature(tampered, signature), event + ": tampered body verifies")
    request = api.parse_request(body)
    check(isinstance(request, expected_class[event]), event + ": parsed as " + type(request).__name__)
    if isinstance(request, ViberMessageRequest):
        check(request.sender.id == "pttm25kSGUo1919sBORWyA==", "sender id")
        check(request.sender.country == "JP" and request.sender.language == "ja", "sender country/language")
        check(request.message_token == json.loads(body)["message_token"], "message_token")
        message = request.message
        kind = json.loads(body)["message"]["type"]
        if kind == "text":
            check(isinstance(message, TextMessage) and message.text == "hello", "text")
            check(message.tracking_data == '{"umButtons":[]}', "tracking_data echoed")
        elif kind == "picture":
            check(isinstance(message, PictureMessage) and message.media.endswith("p.jpg"), "picture media")
            check(message.text == "cat", "picture text")
        elif kind == "sticker":
            check(isinstance(message, StickerMessage) and message.sticker_id == 46105, "sticker id")
        elif kind == "location":
            check(isinstance(message, LocationMessage) and message.location.latitude == 35.68, "location")
    elif isinstance(request, (ViberSubscribedRequest, ViberConversationStartedRequest)):
        check(request.user.id == "pttm25kSGUo1919sBORWyA==", event + " user id")
    elif isinstance(request, ViberUnsubscribedRequest):
        check(request.user_id == "pttm25kSGUo1919sBORWyA==", "unsubscribed user_id")

kinds = []
for body in fixture["sends"]:
    message = get_message(body)
    check(message.validate(), body["type"] + ": SDK validate() refuses the connector's body")
    again = message.to_dict()
    kinds.append(body["type"])
    check(again["type"] == body["type"], "type round trip")
    check(again.get("min_api_version") == body["min_api_version"], "min_api_version round trip")
    for field in ("keyboard", "tracking_data"):
        if field in body:
            check(again.get(field) == body[field], body["type"] + ": " + field + " round trip")
    if body["type"] == "text" and "keyboard" in body:
        buttons = again["keyboard"]["Buttons"]
        check(again["keyboard"]["Type"] == "keyboard", "keyboard Type")
        check([b["ActionBody"] for b in buttons] == ["help-yes", "help-no"], "keyboard payloads")
        check(all(b["ActionType"] == "reply" for b in buttons), "reply buttons")
    if body["type"] == "rich_media":
        check(isinstance(message, RichMediaMessage), "rich media class")
        check(again["rich_media"] == body["rich_media"], "rich_media round trip")
        check(again["rich_media"]["Type"] == "rich_media", "rich_media Type")
check(kinds == ["text", "rich_media", "location", "sticker"], "send kinds " + ",".join(kinds))
print("viberbot conformance: %d checks passed" % checked)
