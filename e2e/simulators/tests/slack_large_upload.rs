//! The Slack simulator's upload URL takes files far over axum's default
//! 2 MB body limit, exactly the length announced to
//! `files.getUploadURLExternal`, and records their size and SHA-256.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use um_simulators::slack::{SlackOptions, SlackSimulator, Workspace};

const TOKEN: &str = "xoxb-1-large-upload";

async fn form_call(sim: &SlackSimulator, method: &str, pairs: &[(&str, &str)]) -> Value {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    reqwest::Client::new()
        .post(format!("{}/api/{method}", sim.base_url()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("call")
        .json()
        .await
        .expect("Slack JSON")
}

/// `files.getUploadURLExternal`: (upload URL, file id).
async fn upload_url(sim: &SlackSimulator, filename: &str, length: usize) -> (String, String) {
    let answer = form_call(
        sim,
        "files.getUploadURLExternal",
        &[("filename", filename), ("length", &length.to_string())],
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
    let field = |name: &str| answer[name].as_str().expect(name).to_owned();
    (field("upload_url"), field("file_id"))
}

async fn complete(sim: &SlackSimulator, file_id: &str, channel: &str) -> Value {
    let files = json!([{"id": file_id}]).to_string();
    form_call(
        sim,
        "files.completeUploadExternal",
        &[("files", &files), ("channel_id", channel)],
    )
    .await
}

#[tokio::test]
async fn a_large_upload_is_recorded_by_size_and_checksum() {
    let sim = SlackSimulator::start(
        SlackOptions::new("secret").with_workspace(Workspace::new("T1", "Acme", TOKEN)),
    )
    .await
    .expect("simulator");
    let channel = sim.open_dm("T1", "U1");
    let client = reqwest::Client::new();

    let bytes: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (url, file_id) = upload_url(&sim, "big.bin", bytes.len()).await;
    let sent = client
        .post(&url)
        .body(bytes.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(sent.status(), 200);
    assert_eq!(complete(&sim, &file_id, &channel).await["ok"], true);
    let uploaded = &sim.uploaded()[0];
    assert_eq!(uploaded.bytes_len, bytes.len());
    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(uploaded.sha256, sha256);

    // One byte more than announced: refused, and the file never completes.
    let (url, file_id) = upload_url(&sim, "liar.bin", 10).await;
    let sent = client
        .post(&url)
        .body(vec![0u8; 11])
        .send()
        .await
        .expect("upload");
    assert_eq!(sent.status(), 400);
    assert_eq!(
        complete(&sim, &file_id, &channel).await["error"],
        "file_upload_not_complete"
    );
    assert_eq!(sim.uploaded().len(), 1);
}
