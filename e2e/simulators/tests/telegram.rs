//! Drives the Telegram simulator over real HTTP and checks the Bot API.

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::Receiver;
use um_simulators::telegram::{
    ApiError, Guest, RedeliveryPolicy, TelegramOptions, TelegramRecordKind, TelegramSimulator,
    UpdateSpec,
};

const BOT: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn start(options: TelegramOptions) -> TelegramSimulator {
    TelegramSimulator::start(options.with_bot(BOT))
        .await
        .unwrap()
}

fn api(sim: &TelegramSimulator, method: &str) -> String {
    format!("{}/bot{BOT}/{method}", sim.base_url())
}

async fn call(sim: &TelegramSimulator, method: &str, params: Value) -> (StatusCode, Value) {
    let response = http()
        .post(api(sim, method))
        .json(&params)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

fn fast_redelivery(max_attempts: u32) -> RedeliveryPolicy {
    RedeliveryPolicy {
        max_attempts,
        interval: Duration::from_millis(20),
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn unknown_token_is_unauthorized_and_get_me_describes_the_bot() {
    let sim = start(TelegramOptions::default()).await;
    let response = http()
        .get(format!("{}/bot999:nope/getMe", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let me: Value = http()
        .get(api(&sim, "getMe"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["ok"], true);
    assert_eq!(me["result"]["id"], 123456);
    assert_eq!(me["result"]["is_bot"], true);
    let (status, body) = call(&sim, "noSuchMethod", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["description"], "Not Found");
}

#[tokio::test]
async fn webhook_updates_carry_the_secret_header_and_increasing_ids() {
    let receiver = Receiver::start().await;
    let sim = start(TelegramOptions::default()).await;
    let (status, body) = call(
        &sim,
        "setWebhook",
        json!({"url": receiver.url, "secret_token": "bad secret!"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["ok"], false);
    let (status, body) = call(
        &sim,
        "setWebhook",
        json!({"url": receiver.url, "secret_token": "s3cret_-X"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"], true);
    let (_, info) = call(&sim, "getWebhookInfo", json!({})).await;
    assert_eq!(info["result"]["url"], receiver.url.as_str());
    assert_eq!(info["result"]["pending_update_count"], 0);

    let guest = Guest::new(42, "Ann").with_username("ann");
    let first = sim
        .send_update(BOT, UpdateSpec::text(&guest, "hello"))
        .await
        .unwrap();
    let second = sim
        .send_update(BOT, UpdateSpec::text(&guest, "again"))
        .await
        .unwrap();
    assert!(first.delivered && second.delivered);
    assert!(second.update_id > first.update_id);
    let repeat = sim
        .send_update(
            BOT,
            UpdateSpec::text(&guest, "hello").with_update_id(first.update_id),
        )
        .await
        .unwrap();
    assert_eq!(repeat.update_id, first.update_id);

    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert_eq!(
        received[0].headers["x-telegram-bot-api-secret-token"],
        "s3cret_-X"
    );
    let update: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(update["message"]["text"], "hello");
    assert_eq!(update["message"]["chat"]["id"], 42);
    assert_eq!(update["message"]["from"]["username"], "ann");
    let next: Value = serde_json::from_slice(&received[1].body).unwrap();
    assert_eq!(
        next["message"]["message_id"].as_i64(),
        update["message"]["message_id"].as_i64().map(|id| id + 1)
    );
}

#[tokio::test]
async fn redelivers_in_order_until_the_webhook_succeeds() {
    let receiver = Receiver::start().await;
    let sim = start(TelegramOptions {
        redelivery: fast_redelivery(5),
        ..Default::default()
    })
    .await;
    call(
        &sim,
        "setWebhook",
        json!({"url": receiver.url, "max_connections": 1}),
    )
    .await;
    receiver.script(&[503, 500]);
    let guest = Guest::new(7, "Bo");
    let (first, second) = tokio::join!(
        sim.send_update(BOT, UpdateSpec::text(&guest, "one")),
        async {
            // Queued behind the first, which is being redelivered.
            assert!(
                sim.wait_for(TelegramRecordKind::Delivery, 1, Duration::from_secs(5))
                    .await
            );
            sim.send_update(BOT, UpdateSpec::text(&guest, "two")).await
        }
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(first.delivered);
    assert_eq!(
        first.attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
        vec![Some(503), Some(500), Some(200)]
    );
    assert_eq!(second.attempts.len(), 1);
    let texts: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["message"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(texts, ["one", "one", "one", "two"]);
    let (_, info) = call(&sim, "getWebhookInfo", json!({})).await;
    assert_eq!(
        info["result"]["last_error_message"],
        "Wrong response from the webhook: 500 Internal Server Error"
    );
    assert!(info["result"]["last_error_date"].as_i64().is_some());
}

#[tokio::test]
async fn gives_up_after_the_bounded_number_of_attempts() {
    let receiver = Receiver::start().await;
    receiver.always(502);
    let sim = start(TelegramOptions {
        redelivery: fast_redelivery(3),
        ..Default::default()
    })
    .await;
    call(&sim, "setWebhook", json!({"url": receiver.url})).await;
    let outcome = sim
        .send_update(BOT, UpdateSpec::text(&Guest::new(1, "A"), "x"))
        .await
        .unwrap();
    assert!(!outcome.delivered);
    assert_eq!(outcome.attempts.len(), 3);
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(sim.deliveries().len(), 3);
}

#[tokio::test]
async fn uploaded_file_round_trips_through_get_file_and_download() {
    let sim = start(TelegramOptions::default()).await;
    let content: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let sizes = sim.upload_photo(content.clone(), "image/jpeg");
    assert_eq!(sizes.len(), 3);
    assert!(sizes[0].file_size < sizes[2].file_size, "largest last");
    let (status, file) = call(&sim, "getFile", json!({"file_id": sizes[2].file_id})).await;
    assert_eq!(status, StatusCode::OK);
    let path = file["result"]["file_path"].as_str().unwrap();
    assert_eq!(file["result"]["file_size"], 5000);
    let download = http()
        .get(format!("{}/file/bot{BOT}/{path}", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().as_ref(), content.as_slice());
    let wrong = http()
        .get(format!("{}/file/bot999:x/{path}", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = call(&sim, "getFile", json!({"file_id": "nope"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["description"], "Bad Request: invalid file_id");
}

#[tokio::test]
async fn send_message_checks_length_markup_blocked_and_unknown_chats() {
    let sim = start(TelegramOptions::default()).await;
    let (status, body) = call(
        &sim,
        "sendMessage",
        json!({"chat_id": 42, "text": "a".repeat(4097)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: message is too long"})
    );

    let markup = json!({"inline_keyboard": [[{"text": "Yes", "callback_data": "x".repeat(65)}]]});
    let (status, body) = call(
        &sim,
        "sendMessage",
        json!({"chat_id": 42, "text": "pick", "reply_markup": markup}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["description"], "Bad Request: BUTTON_DATA_INVALID");

    let (status, body) = call(&sim, "sendMessage", json!({"chat_id": 42, "text": "hi"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["text"], "hi");
    assert_eq!(body["result"]["chat"]["id"], 42);
    assert_eq!(body["result"]["from"]["is_bot"], true);

    sim.block_chat(42);
    let (status, body) = call(&sim, "sendMessage", json!({"chat_id": 42, "text": "hi"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["description"],
        "Forbidden: bot was blocked by the user"
    );

    sim.set_require_known_chats(true);
    let (status, body) = call(&sim, "sendMessage", json!({"chat_id": 4242, "text": "hi"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["description"], "Bad Request: chat not found");
    assert_eq!(
        sim.sent_to(42).len(),
        1,
        "only the accepted message is recorded"
    );
}

#[tokio::test]
async fn form_and_query_parameters_are_accepted() {
    let sim = start(TelegramOptions::default()).await;
    let markup = json!({"keyboard": [["Yes", "No"]], "one_time_keyboard": true}).to_string();
    let form = http()
        .post(api(&sim, "sendMessage"))
        .form(&[
            ("chat_id", "42"),
            ("text", "form text"),
            ("reply_markup", markup.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let query = http()
        .get(api(&sim, "sendMessage"))
        .query(&[("chat_id", "42"), ("text", "query text")])
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), StatusCode::OK);
    let texts: Vec<Value> = sim
        .sent_to(42)
        .iter()
        .map(|sent| sent.message["text"].clone())
        .collect();
    assert_eq!(texts, vec![json!("form text"), json!("query text")]);
    let calls = sim.calls_of("sendMessage");
    assert_eq!(
        calls[0].params["reply_markup"]["one_time_keyboard"], true,
        "JSON-encoded form fields are decoded"
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let sim = start(TelegramOptions {
        per_chat_per_second: 1,
        ..Default::default()
    })
    .await;
    let (status, _) = call(&sim, "sendMessage", json!({"chat_id": 1, "text": "a"})).await;
    assert_eq!(status, StatusCode::OK);
    let response = http()
        .post(api(&sim, "sendMessage"))
        .json(&json!({"chat_id": 1, "text": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["parameters"]["retry_after"], 1);
    assert_eq!(body["description"], "Too Many Requests: retry after 1");
    let (status, _) = call(
        &sim,
        "sendMessage",
        json!({"chat_id": 2, "text": "other chat"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the limit is per chat");

    sim.inject_rate_limit(Some("sendPhoto"), 1, 9);
    let (status, body) = call(&sim, "sendPhoto", json!({"chat_id": 3, "photo": "x"})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["parameters"]["retry_after"], 9);
    sim.inject_error(None, ApiError::new(502, "Bad Gateway"), 1);
    let (status, _) = call(&sim, "sendMessage", json!({"chat_id": 4, "text": "x"})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

async fn media_server() -> String {
    let app = Router::new()
        .route(
            "/cat.jpg",
            get(|| async { ([("content-type", "image/jpeg")], vec![7u8; 1234]) }),
        )
        .route("/missing.jpg", get(|| async { StatusCode::NOT_FOUND }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

#[tokio::test]
async fn media_by_url_is_fetched_and_recorded() {
    let base = media_server().await;
    let sim = start(TelegramOptions::default()).await;
    let (status, body) = call(
        &sim,
        "sendPhoto",
        json!({"chat_id": 5, "photo": format!("{base}/cat.jpg"), "caption": "a cat"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["caption"], "a cat");
    let sent = sim.sent_to(5);
    let fetch = sent[0].media.clone().unwrap();
    assert_eq!(fetch.bytes_len, 1234);
    assert_eq!(fetch.content_type, "image/jpeg");
    let (status, file) = call(
        &sim,
        "getFile",
        json!({"file_id": body["result"]["photo"][0]["file_id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(file["result"]["file_size"], 1234);

    let (status, body) = call(
        &sim,
        "sendDocument",
        json!({"chat_id": 5, "document": format!("{base}/missing.jpg")}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["description"],
        "Bad Request: failed to get HTTP URL content"
    );
    let (status, body) = call(
        &sim,
        "sendPhoto",
        json!({"chat_id": 5, "photo": format!("{base}/cat.jpg"), "caption": "c".repeat(1025)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["description"],
        "Bad Request: message caption is too long"
    );
}

#[tokio::test]
async fn multipart_upload_is_stored() {
    let sim = start(TelegramOptions::default()).await;
    let form = reqwest::multipart::Form::new().text("chat_id", "8").part(
        "document",
        reqwest::multipart::Part::bytes(b"%PDF-1.4 hello".to_vec())
            .file_name("report.pdf")
            .mime_str("application/pdf")
            .unwrap(),
    );
    let response = http()
        .post(api(&sim, "sendDocument"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["document"]["file_name"], "report.pdf");
    assert_eq!(body["result"]["document"]["mime_type"], "application/pdf");
    assert_eq!(body["result"]["document"]["file_size"], 14);
}

#[tokio::test]
async fn callback_queries_can_be_answered_once() {
    let receiver = Receiver::start().await;
    let sim = start(TelegramOptions::default()).await;
    call(&sim, "setWebhook", json!({"url": receiver.url})).await;
    let (_, sent) = call(
        &sim,
        "sendMessage",
        json!({"chat_id": 9, "text": "pick", "reply_markup": {"inline_keyboard": [[{"text": "Yes", "callback_data": "y"}]]}}),
    )
    .await;
    let message_id = sent["result"]["message_id"].as_i64();
    let guest = Guest::new(9, "Cy");
    let delivery = sim
        .send_update(BOT, UpdateSpec::callback_query(&guest, "y", message_id))
        .await
        .unwrap();
    let query = &delivery.update["callback_query"];
    assert_eq!(query["data"], "y");
    assert_eq!(query["message"]["text"], "pick");
    let id = query["id"].as_str().unwrap();
    let (status, _) = call(
        &sim,
        "answerCallbackQuery",
        json!({"callback_query_id": id, "text": "ok"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &sim,
        "answerCallbackQuery",
        json!({"callback_query_id": id}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(sim.callback_answers().len(), 1);
}

#[tokio::test]
async fn other_methods_validate_their_parameters() {
    let sim = start(TelegramOptions::default()).await;
    assert_eq!(
        call(
            &sim,
            "sendChatAction",
            json!({"chat_id": 1, "action": "typing"})
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &sim,
            "sendChatAction",
            json!({"chat_id": 1, "action": "dancing"})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let (status, body) = call(
        &sim,
        "sendLocation",
        json!({"chat_id": 1, "latitude": 35.68, "longitude": 139.76}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["location"]["latitude"], 35.68);
    assert_eq!(
        call(
            &sim,
            "sendLocation",
            json!({"chat_id": 1, "latitude": 135.0, "longitude": 0})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let sticker = sim.upload_file(vec![1u8; 10], "image/webp");
    let (status, body) = call(
        &sim,
        "sendSticker",
        json!({"chat_id": 1, "sticker": sticker.file_id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["result"]["sticker"]["file_id"],
        sticker.file_id.as_str()
    );
    assert_eq!(
        call(&sim, "deleteWebhook", json!({})).await.1["description"],
        "Webhook is already deleted"
    );
}

#[tokio::test]
async fn html_parse_mode_is_checked_like_telegram() {
    let sim = start(TelegramOptions::default()).await;
    let (status, _) = call(
        &sim,
        "sendMessage",
        json!({"chat_id": 1, "text": "<b>5 &lt; 6</b>", "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &sim,
        "sendMessage",
        json!({"chat_id": 1, "text": "fish & chips <3", "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .starts_with("Bad Request: can't parse entities")
    );
    let (status, _) = call(
        &sim,
        "sendMessage",
        json!({"chat_id": 1, "text": "fish & chips <3"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "plain text is not parsed");
}

#[tokio::test]
async fn sent_messages_can_be_edited_and_deleted() {
    let sim = start(TelegramOptions::default()).await;
    let keyboard = json!({"inline_keyboard": [[{"text": "Yes", "callback_data": "y"}]]});
    let (_, sent) = call(
        &sim,
        "sendMessage",
        json!({"chat_id": 3, "text": "pick", "reply_markup": keyboard}),
    )
    .await;
    let message_id = sent["result"]["message_id"].clone();
    let (status, edited) = call(
        &sim,
        "editMessageReplyMarkup",
        json!({"chat_id": 3, "message_id": message_id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        edited["result"].get("reply_markup").is_none(),
        "keyboard removed"
    );
    let (status, body) = call(
        &sim,
        "editMessageReplyMarkup",
        json!({"chat_id": 3, "message_id": message_id}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("message is not modified")
    );
    let (status, edited) = call(
        &sim,
        "editMessageText",
        json!({"chat_id": 3, "message_id": message_id, "text": "picked"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(edited["result"]["text"], "picked");
    assert_eq!(
        call(
            &sim,
            "deleteMessage",
            json!({"chat_id": 3, "message_id": message_id})
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, body) = call(
        &sim,
        "deleteMessage",
        json!({"chat_id": 3, "message_id": 999}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["description"],
        "Bad Request: message to delete not found"
    );
}
