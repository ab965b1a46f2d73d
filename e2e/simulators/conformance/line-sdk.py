"""Checks the LINE simulator against LINE's official Python SDK
(line-bot-sdk v3 from PyPI):

- webhooks the simulator signs pass the SDK's WebhookParser (signature
  check and event models), and a tampered body does not;
- the SDK's MessagingApi can reply, push with X-Line-Retry-Key (a repeat
  is a 409 the SDK reports), read a profile, and MessagingApiBlob can
  download content from the simulator.

Usage: line-sdk.py <um-sim base URL> <channel id> <channel secret> <access token>
"""

import json
import sys
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    MessagingApi,
    MessagingApiBlob,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.webhooks import (
    FollowEvent,
    ImageMessageContent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
    UnfollowEvent,
)

base, channel_id, secret, token = sys.argv[1:5]
received = []
arrived = threading.Condition()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with arrived:
            received.append((body.decode("utf-8"), self.headers.get("X-Line-Signature")))
            arrived.notify_all()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def control(path, payload):
    request = urllib.request.Request(
        f"{base}/__sim/line{path}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=20) as answer:
        text = answer.read()
        return json.loads(text) if text else None


failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


server = HTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
control("/webhook", {"channel_id": channel_id, "url": f"http://127.0.0.1:{server.server_port}/hook"})
user = "U" + uuid.uuid4().hex
control("/users", {"user_id": user, "display_name": "SDK Guest", "language": "ja"})
for event in [
    {"text": "hello"},
    {"image_base64": "AQIDBA==", "mime": "image/png"},
    {"postback": "action=buy&item=1"},
    {"follow": True},
    {"unfollow": True},
]:
    delivery = control("/events", {"channel_id": channel_id, "user_id": user, **event})
    check(delivery["delivered"], f"webhook {list(event)[0]} delivered")

parser = WebhookParser(secret)
parsed = []
for body, signature in received:
    try:
        parsed.extend(parser.parse(body, signature))
    except InvalidSignatureError:
        check(False, "SDK accepts the simulator's X-Line-Signature")
check(len(parsed) == 5, f"SDK parsed 5 events ({len(parsed)})")
text, image, postback, follow, unfollow = (parsed + [None] * 5)[:5]
check(isinstance(text, MessageEvent) and isinstance(text.message, TextMessageContent)
      and text.message.text == "hello" and text.source.user_id == user and bool(text.reply_token),
      "text message event")
check(isinstance(image, MessageEvent) and isinstance(image.message, ImageMessageContent)
      and image.message.content_provider.type == "line", "image message event")
check(isinstance(postback, PostbackEvent) and postback.postback.data == "action=buy&item=1", "postback event")
check(isinstance(follow, FollowEvent), "follow event")
check(isinstance(unfollow, UnfollowEvent), "unfollow event")
check(all(e.webhook_event_id and e.delivery_context.is_redelivery is False for e in parsed if e),
      "webhookEventId and deliveryContext present")
try:
    body, signature = received[0]
    parser.parse(body.replace("hello", "hullo"), signature)
    check(False, "tampered body refused")
except InvalidSignatureError:
    check(True, "tampered body refused")

configuration = Configuration(host=base, access_token=token)
with ApiClient(configuration) as client:
    api = MessagingApi(client)
    api.reply_message(ReplyMessageRequest(reply_token=text.reply_token, messages=[TextMessage(text="reply")]))
    check(True, "reply with the event's token")
    try:
        api.reply_message(ReplyMessageRequest(reply_token=text.reply_token, messages=[TextMessage(text="again")]))
        check(False, "a used reply token is refused")
    except ApiException as error:
        check(error.status == 400 and "reply token" in error.body.lower(), "a used reply token is refused")
    key = str(uuid.uuid4())
    quick = QuickReply(items=[QuickReplyItem(action=PostbackAction(label="Yes", data="yes", display_text="Yes"))])
    request = PushMessageRequest(to=user, messages=[TextMessage(text="push", quick_reply=quick)])
    sent = api.push_message(request, x_line_retry_key=key)
    check(len(sent.sent_messages) == 1, "push accepted with a retry key")
    try:
        api.push_message(request, x_line_retry_key=key)
        check(False, "the same retry key is refused")
    except ApiException as error:
        check(error.status == 409 and "x-line-accepted-request-id" in {k.lower() for k in error.headers},
              "the same retry key answers 409 with x-line-accepted-request-id")
    control("/users", {"user_id": user, "display_name": "SDK Guest", "language": "ja"})
    profile = api.get_profile(user)
    check(profile.display_name == "SDK Guest" and profile.language == "ja", "profile")
    content = MessagingApiBlob(client).get_message_content(image.message.id)
    check(bytes(content) == b"\x01\x02\x03\x04", "content download")

server.shutdown()
if failures:
    print(f"{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("LINE simulator conforms to line-bot-sdk")
