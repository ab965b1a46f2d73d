"""Drives the Genesys simulator with the official Python SDK
(PureCloudPlatformClientV2): OAuth client credentials, integration CRUD,
inbound message with prefetchConversationId, typing event, response
management query. Any mismatch between the simulator's shapes and the SDK's
models surfaces as an exception or a failed assertion.

Usage: genesys_python_sdk.py BASE_URL CLIENT_ID CLIENT_SECRET WEBHOOK_URL
"""

import datetime
import sys

import PureCloudPlatformClientV2 as genesys
from PureCloudPlatformClientV2.rest import ApiException


def main(base_url, client_id, client_secret, webhook_url):
    # With a host that does not start with "api.", the SDK posts /oauth/token
    # to the same host, as the simulator expects.
    client = genesys.ApiClient(host=base_url).get_client_credentials_token(client_id, client_secret)
    conversations = genesys.ConversationsApi(client)

    request = genesys.OpenIntegrationRequest()
    request.name = "sdk-conformance"
    request.outbound_notification_webhook_url = webhook_url
    request.outbound_notification_webhook_signature_secret_token = "sdk-conformance-secret-0123"
    request.webhook_headers = {"X-Check": "sdk"}
    created = conversations.post_conversations_messaging_integrations_open(request)
    assert created.create_status == "Initiated", created.create_status
    integration_id = created.id

    fetched = conversations.get_conversations_messaging_integrations_open_integration_id(integration_id)
    assert fetched.create_status == "Completed", fetched.create_status
    assert fetched.outbound_notification_webhook_url == webhook_url

    listing = conversations.get_conversations_messaging_integrations_open(page_size=25, page_number=1)
    assert any(entity.id == integration_id for entity in listing.entities), listing

    update = genesys.OpenIntegrationUpdateRequest()
    update.name = "sdk-conformance-renamed"
    patched = conversations.patch_conversations_messaging_integrations_open_integration_id(integration_id, update)
    assert patched.name == "sdk-conformance-renamed"

    sender = genesys.OpenMessagingFromRecipient()
    sender.id = "sdk-guest-1"
    sender.id_type = "Opaque"
    sender.nickname = "SDK Guest"
    channel = genesys.OpenInboundMessageMessagingChannel()
    channel.pcFrom = sender
    # Naive datetime: the SDK sends isoformat() without an offset.
    channel.time = datetime.datetime.utcnow()
    channel.message_id = "sdk-ext-1"
    message = genesys.OpenInboundNormalizedMessage()
    message.channel = channel
    message.text = "Hello from the SDK"
    message.metadata = {"source": "sdk"}
    answer = conversations.post_conversations_message_inbound_open_message(
        integration_id, message, prefetch_conversation_id=True
    )
    assert answer.text == "Hello from the SDK"
    assert answer.conversation_id, "conversationId missing with prefetchConversationId=true"

    event = genesys.OpenEvent()
    event.event_type = "Typing"
    event_channel = genesys.OpenInboundMessagingChannel()
    event_channel.pcFrom = sender
    event_channel.time = datetime.datetime.now(datetime.timezone.utc)
    typing = genesys.OpenInboundNormalizedEvent()
    typing.channel = event_channel
    typing.events = [event]
    conversations.post_conversations_message_inbound_open_event(integration_id, typing)

    responses = genesys.ResponseManagementApi(client)
    query = genesys.ResponseQueryRequest()
    query.query_phrase = "help"
    query.page_size = 25
    results = responses.post_responsemanagement_responses_query(query)
    assert results.results.total == 1, results
    assert results.results.entities[0].substitutions[0].id == "Name"

    conversations.delete_conversations_messaging_integrations_open_integration_id(integration_id)
    try:
        conversations.get_conversations_messaging_integrations_open_integration_id(integration_id)
        raise AssertionError("deleted integration still readable")
    except ApiException as error:
        assert error.status == 404, error.status

    bad = genesys.ApiClient(host=base_url)
    try:
        bad.get_client_credentials_token(client_id, "wrong-secret")
        raise AssertionError("bad credentials accepted")
    except ApiException as error:
        assert error.status == 401, error.status
    print("python SDK conformance: OK")


if __name__ == "__main__":
    main(*sys.argv[1:5])
