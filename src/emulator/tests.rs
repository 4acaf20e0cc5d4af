//! Raw-HTTP smoke tests against a running emulator.

use super::*;
use serde_json::{Value, json};

struct T {
    emu: Emulator,
    http: reqwest::Client,
    token: String,
    _dir: tempfile::TempDir,
}

impl T {
    async fn new() -> T {
        let dir = tempfile::tempdir().expect("tempdir");
        let emu = Emulator::start(EmulatorConfig::new(dir.path()))
            .await
            .expect("start");
        emu.add_user("a@example.com", "password1");
        let http = reqwest::Client::new();
        let mut t = T {
            emu,
            http,
            token: String::new(),
            _dir: dir,
        };
        let v = t
            .json(
                "POST",
                "/session/token",
                json!({"email":"a@example.com","password":"password1"}),
            )
            .await;
        assert_eq!(v["code"], 0, "{v}");
        t.token = v["data"]["token"]["access_token"]
            .as_str()
            .expect("token")
            .to_string();
        t
    }

    fn url(&self, p: &str) -> String {
        format!("{}/api/v4{p}", self.emu.url())
    }

    async fn json(&self, method: &str, p: &str, body: Value) -> Value {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut r = self.http.request(m, self.url(p)).json(&body);
        if !self.token.is_empty() {
            r = r.bearer_auth(&self.token);
        }
        let resp = r.send().await.expect("send");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("private, no-cache")
        );
        resp.json().await.expect("json")
    }

    async fn get(&self, p: &str) -> Value {
        self.http
            .get(self.url(p))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json")
    }
}

fn q(uri: &str) -> String {
    url_encode(uri)
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn basics_and_errors() {
    let t = T::new().await;
    let v = t.get("/site/ping").await;
    assert_eq!(v["data"], "4.18.0");
    let r = t.http.get(t.url("/nope")).send().await.expect("send");
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.expect("text"), "404 page not found");
    // Bad credentials.
    let v = t
        .json(
            "POST",
            "/session/token",
            json!({"email":"a@example.com","password":"wrong-pass"}),
        )
        .await;
    assert_eq!(v["code"], 40080);
    // Binding error: no correlation id.
    let v = t.json("POST", "/file/create", json!({"uri": 5})).await;
    assert_eq!(v["code"], 40001);
    assert!(v.get("correlation_id").is_none());
    // Anonymous.
    let r: Value = t
        .http
        .get(t.url("/user/me"))
        .bearer_auth("garbage")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(r["code"], 401);
    // mkdir -p and list.
    let v = t
        .json(
            "POST",
            "/file/create",
            json!({"uri":"cloudreve://my/a/b c","type":"folder"}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["data"]["path"], "cloudreve://my/a/b%20c");
    let v = t
        .json(
            "POST",
            "/file/create",
            json!({"uri":"cloudreve://my/a/f.txt","type":"file"}),
        )
        .await;
    assert_eq!(v["code"], 0);
    let v = t.get(&format!("/file?uri={}", q("cloudreve://my/a"))).await;
    assert_eq!(v["code"], 0, "{v}");
    let files = v["data"]["files"].as_array().expect("files");
    assert_eq!(files[0]["name"], "b c");
    assert_eq!(files[1]["name"], "f.txt");
    assert_eq!(v["data"]["parent"]["name"], "a");
    // Info on root is 403; missing is 40016.
    let v = t
        .get(&format!("/file/info?uri={}", q("cloudreve://my/")))
        .await;
    assert_eq!(v["code"], 403);
    let v = t
        .get(&format!("/file/info?uri={}", q("cloudreve://my/zz")))
        .await;
    assert_eq!(v["code"], 40016);
    // Delete of a missing file: 40081 wrapping 40016.
    let v = t
        .json("DELETE", "/file", json!({"uris":["cloudreve://my/zz"]}))
        .await;
    assert_eq!(v["code"], 40081);
    assert_eq!(
        v["aggregated_error"]["cloudreve://my/zz"]["code"], 40016,
        "{v}"
    );
    // Soft delete and restore.
    let v = t
        .json(
            "DELETE",
            "/file",
            json!({"uris":["cloudreve://my/a/f.txt"]}),
        )
        .await;
    assert_eq!(v["code"], 0);
    let v = t
        .get(&format!("/file?uri={}", q("cloudreve://trash")))
        .await;
    let item = &v["data"]["files"][0];
    assert_eq!(item["name"], "f.txt");
    assert_eq!(
        item["metadata"]["sys:restore_uri"],
        "cloudreve://my/a/f.txt"
    );
    let tp = item["path"].as_str().expect("path").to_string();
    let v = t.json("POST", "/file/restore", json!({"uris":[tp]})).await;
    assert_eq!(v["code"], 0, "{v}");
    assert!(t.emu.file_bytes("a@example.com", "/a/f.txt").is_some());
}

#[tokio::test]
async fn upload_download_and_locks() {
    let t = T::new().await;
    t.emu.set_chunk_size(4);
    let v = t.get(&format!("/file?uri={}", q("cloudreve://my/"))).await;
    let policy = v["data"]["storage_policy"]["id"]
        .as_str()
        .expect("policy")
        .to_string();
    let v = t
        .json(
            "PUT",
            "/file/upload",
            json!({"uri":"cloudreve://my/d/x.bin","size":10,"policy_id":policy}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    let sid = v["data"]["session_id"].as_str().expect("sid").to_string();
    assert_eq!(v["data"]["chunk_size"], 4);
    assert_eq!(t.emu.upload_sessions("a@example.com"), 1);
    // Placeholder visible and locked.
    let v = t
        .get(&format!("/file/info?uri={}", q("cloudreve://my/d/x.bin")))
        .await;
    assert_eq!(v["data"]["metadata"]["sys:upload_session_id"], sid.as_str());
    let v = t
        .json(
            "POST",
            "/file/rename",
            json!({"uri":"cloudreve://my/d","new_name":"e"}),
        )
        .await;
    assert_eq!(v["code"], 40073);
    assert_eq!(v["data"][0]["path"], "cloudreve://my/d/x.bin");
    assert_eq!(v["data"][0]["owner"]["application"]["type"], "upload");
    // Wrong chunk length, bad index.
    let send = |i: usize, body: &'static [u8]| {
        t.http
            .post(t.url(&format!("/file/upload/{sid}/{i}")))
            .bearer_auth(&t.token)
            .body(body)
            .send()
    };
    let v: Value = send(0, b"abc").await.expect("s").json().await.expect("j");
    assert_eq!(v["code"], 40013);
    let v: Value = send(3, b"ab").await.expect("s").json().await.expect("j");
    assert_eq!(v["code"], 40012);
    for (i, c) in [&b"0123"[..], b"4567", b"89"].into_iter().enumerate() {
        let v: Value = send(i, c).await.expect("s").json().await.expect("j");
        assert_eq!(v, json!({"code":0,"msg":""}));
    }
    assert_eq!(t.emu.upload_sessions("a@example.com"), 0);
    assert!(t.emu.active_locks("a@example.com").is_empty());
    assert_eq!(
        t.emu.file_bytes("a@example.com", "/d/x.bin").as_deref(),
        Some(&b"0123456789"[..])
    );
    // Download with Range.
    let v = t
        .json(
            "POST",
            "/file/url",
            json!({"uris":["cloudreve://my/d/x.bin"]}),
        )
        .await;
    let url = v["data"]["urls"][0]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let r = t
        .http
        .get(&url)
        .header("Range", "bytes=2-4")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 206);
    let etag = r
        .headers()
        .get("etag")
        .expect("etag")
        .to_str()
        .expect("s")
        .to_string();
    assert_eq!(r.bytes().await.expect("b").as_ref(), b"234");
    let r = t
        .http
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 304);
    let r = t.http.get(&url).send().await.expect("get");
    let lm = r
        .headers()
        .get("last-modified")
        .expect("lm")
        .to_str()
        .expect("s")
        .to_string();
    let r = t
        .http
        .get(&url)
        .header("If-Modified-Since", &lm)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 304);
    let r = t
        .http
        .get(&url)
        .header("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let r = t
        .http
        .get(&url)
        .header("Range", "bytes=20-")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 416);
    // Expired sign: HTTP 200 JSON 40005.
    t.emu.advance_clock(std::time::Duration::from_secs(7200));
    let r = t.http.get(&url).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["code"], 40005);
}

#[tokio::test]
async fn put_content_and_unlock() {
    let mut t = T::new().await;
    let put = |body: &'static [u8]| {
        t.http
            .put(t.url(&format!(
                "/file/content?uri={}",
                q("cloudreve://my/p/q.txt")
            )))
            .bearer_auth(&t.token)
            .body(body)
            .send()
    };
    let v: Value = put(b"hello").await.expect("s").json().await.expect("j");
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["data"]["size"], 5);
    assert!(v["data"]["metadata"].is_null());
    let tok = t.emu.inject_lock(
        "a@example.com",
        "/p/q.txt",
        LockSpec {
            owner: LockOwner::Dav {
                inner_xml: "<D:href>x</D:href>".into(),
            },
            zero_depth: false,
            ttl: None,
        },
    );
    let v: Value = put(b"again").await.expect("s").json().await.expect("j");
    assert_eq!(v["code"], 40073);
    assert_eq!(v["data"][0]["token"], tok.as_str());
    assert_eq!(
        v["data"][0]["owner"]["application"]["inner_xml"],
        "<D:href>x</D:href>"
    );
    // Unknown token: nothing unlocked.
    t.token.clear();
    let v = t
        .json(
            "DELETE",
            "/file/lock",
            json!({"tokens":[tok.clone(), "nope"]}),
        )
        .await;
    assert_eq!(v["code"], 40001);
    let v = t
        .json("DELETE", "/file/lock", json!({"tokens":[tok]}))
        .await;
    assert_eq!(v["code"], 0);
    assert!(t.emu.active_locks("a@example.com").is_empty());
}

#[tokio::test]
async fn persistence_across_restart() {
    let t = T::new().await;
    let r: Value = t
        .http
        .put(t.url(&format!(
            "/file/content?uri={}",
            q("cloudreve://my/k/p.txt")
        )))
        .bearer_auth(&t.token)
        .body("persist me")
        .send()
        .await
        .expect("put")
        .json()
        .await
        .expect("json");
    assert_eq!(r["code"], 0);
    let dir = t._dir;
    t.emu.shutdown().await;
    let emu = Emulator::start(EmulatorConfig::new(dir.path()))
        .await
        .expect("restart");
    assert_eq!(
        emu.file_bytes("a@example.com", "/k/p.txt").as_deref(),
        Some(&b"persist me"[..])
    );
    // Tokens survive (the instance secret is persisted).
    let v: Value = reqwest::Client::new()
        .get(format!("{}/api/v4/user/me", emu.url()))
        .bearer_auth(&t.token)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(v["code"], 0, "{v}");
    emu.shutdown().await;
}

#[tokio::test]
async fn list_ten_thousand() {
    let t = T::new().await;
    {
        let mut st = t.emu.inner.lock();
        let uid = st.user_by_email("a@example.com").expect("user");
        let root = st.users.get(&uid).expect("u").root;
        let now = t.emu.inner.clock.now();
        for i in 0..10_000 {
            let id = st.alloc();
            let folder = i % 10 == 0;
            st.files.insert(
                id,
                state::new_node(id, uid, None, &format!("f{i:05}"), folder, now),
            );
            st.attach(id, root);
        }
    }
    let start = std::time::Instant::now();
    let mut token = String::new();
    let mut seen = vec![];
    loop {
        let mut p = format!(
            "/file?uri={}&page_size=500&order_by=name",
            q("cloudreve://my/")
        );
        if !token.is_empty() {
            p.push_str(&format!("&next_page_token={}", url_encode(&token)));
        }
        let v = t.get(&p).await;
        assert_eq!(v["code"], 0, "{v}");
        for f in v["data"]["files"].as_array().expect("files") {
            seen.push((
                f["type"].as_i64().unwrap_or(-1),
                f["name"].as_str().unwrap_or("").to_string(),
            ));
        }
        match v["data"]["pagination"]["next_token"].as_str() {
            Some(n) if !n.is_empty() => token = n.to_string(),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 10_000);
    assert!(seen[..1000].iter().all(|(t, _)| *t == 1));
    assert!(
        seen.windows(2)
            .all(|w| w[0] <= w[1] || w[0].0 != w[1].0 || w[0].1 < w[1].1)
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

#[tokio::test]
async fn head_faults_and_tokens() {
    let t = T::new().await;
    let r = t
        .http
        .put(t.url(&format!("/file/content?uri={}", q("cloudreve://my/h.bin"))))
        .bearer_auth(&t.token)
        .body(vec![7u8; 1000])
        .send()
        .await
        .expect("put");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["code"], 0, "{v}");
    let v = t
        .json(
            "POST",
            "/file/url",
            json!({"uris":["cloudreve://my/h.bin"]}),
        )
        .await;
    let url = v["data"]["urls"][0]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let r = t.http.head(&url).send().await.expect("head");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some("1000")
    );
    // Tampered sign.
    let bad = url.replace("sign=", "sign=AA");
    let v: Value = t
        .http
        .get(&bad)
        .send()
        .await
        .expect("g")
        .json()
        .await
        .expect("j");
    assert_eq!(v["code"], 40071);
    // Missing sign.
    let nosign = url.split('?').next().expect("base").to_string();
    let v: Value = t
        .http
        .get(&nosign)
        .send()
        .await
        .expect("g")
        .json()
        .await
        .expect("j");
    assert_eq!(v["code"], 403);
    // DropAfterBytes truncates the body.
    t.emu.add_fault(Fault {
        method: None,
        path_prefix: "/api/v4/file/content/".into(),
        kind: FaultKind::DropAfterBytes(100),
        times: Some(1),
    });
    let r = t.http.get(&url).send().await.expect("get");
    assert!(r.bytes().await.is_err());
    // DropConnection fails the request.
    t.emu.add_fault(Fault {
        method: None,
        path_prefix: "/api/v4/site/ping".into(),
        kind: FaultKind::DropConnection,
        times: Some(1),
    });
    assert!(t.http.get(t.url("/site/ping")).send().await.is_err());
    let v = t.get("/site/ping").await;
    assert_eq!(v["code"], 0);
    // Code -1 fault.
    t.emu.add_fault(Fault {
        method: None,
        path_prefix: "/api/v4/site/ping".into(),
        kind: FaultKind::CodeMinusOne,
        times: Some(1),
    });
    assert_eq!(t.get("/site/ping").await["code"], -1);
    // Refresh token as bearer: 40020 everywhere.
    let v = t
        .json(
            "POST",
            "/session/token",
            json!({"email":"a@example.com","password":"password1"}),
        )
        .await;
    let refresh = v["data"]["token"]["refresh_token"]
        .as_str()
        .expect("r")
        .to_string();
    let v: Value = t
        .http
        .get(t.url("/site/ping"))
        .bearer_auth(&refresh)
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(v["code"], 40020);
    let v = t
        .json(
            "POST",
            "/session/token/refresh",
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    // Expired access token: anonymous.
    t.emu.advance_clock(std::time::Duration::from_secs(3601));
    assert_eq!(t.get("/user/me").await["code"], 401);
}

#[tokio::test]
async fn move_copy_metadata_dav() {
    let t = T::new().await;
    for u in [
        "cloudreve://my/s/x",
        "cloudreve://my/s/y",
        "cloudreve://my/d/y",
    ] {
        let v = t
            .json("POST", "/file/create", json!({"uri":u,"type":"file"}))
            .await;
        assert_eq!(v["code"], 0);
    }
    // Clash: nothing moves.
    let v = t
        .json(
            "POST",
            "/file/move",
            json!({"uris":["cloudreve://my/s/x","cloudreve://my/s/y"],"dst":"cloudreve://my/d"}),
        )
        .await;
    assert_eq!(v["code"], 40004);
    assert!(t.emu.file_bytes("a@example.com", "/s/x").is_some());
    // Partial success with a missing source.
    let v = t
        .json(
            "POST",
            "/file/move",
            json!({"uris":["cloudreve://my/s/x","cloudreve://my/s/nope"],"dst":"cloudreve://my/d"}),
        )
        .await;
    assert_eq!(v["code"], 40081);
    assert!(t.emu.file_bytes("a@example.com", "/d/x").is_some());
    // Into itself.
    let v = t
        .json(
            "POST",
            "/file/move",
            json!({"uris":["cloudreve://my/d"],"dst":"cloudreve://my/d"}),
        )
        .await;
    assert_eq!(v["code"], 40081);
    // Metadata.
    let v = t
        .json(
            "PATCH",
            "/file/metadata",
            json!({"uris":["cloudreve://my/d/x"],"patches":[{"key":"dav:urn:x|foo","value":"{\"i\":\"YmFy\"}"}]}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    let v = t
        .json(
            "PATCH",
            "/file/metadata",
            json!({"uris":["cloudreve://my/d/x"],"patches":[{"key":"exif:x","value":"1"}]}),
        )
        .await;
    assert_eq!(v["code"], 40001);
    let v = t
        .json(
            "PATCH",
            "/file/metadata",
            json!({"uris":["cloudreve://my/"],"patches":[{"key":"dav:a|b","value":"1"}]}),
        )
        .await;
    assert_eq!(v["code"], 40081);
    assert_eq!(v["aggregated_error"]["cloudreve://my/"]["code"], 403, "{v}");
    let big = "x".repeat(65536);
    let v = t
        .json(
            "PATCH",
            "/file/metadata",
            json!({"uris":["cloudreve://my/d/x"],"patches":[{"key":"dav:a|b","value":big}]}),
        )
        .await;
    assert_eq!(v["code"], -1);
    // Copy carries metadata.
    let v = t
        .json(
            "POST",
            "/file/move",
            json!({"uris":["cloudreve://my/d/x"],"dst":"cloudreve://my/s","copy":true}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    let v = t
        .get(&format!("/file/info?uri={}", q("cloudreve://my/s/x")))
        .await;
    assert_eq!(v["data"]["metadata"]["dav:urn:x|foo"], "{\"i\":\"YmFy\"}");
    // DAV accounts.
    let v = t.get("/devices/dav?page_size=5").await;
    assert_eq!(v["code"], 40001);
    let v = t
        .json(
            "PUT",
            "/devices/dav",
            json!({"uri":"cloudreve://my/","name":"n","readonly":true,"proxy":true}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["data"]["options"], "Aw==");
    let pw = v["data"]["password"].as_str().expect("pw").to_string();
    assert_eq!(pw.len(), 32);
    assert!(
        pw.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    let id = v["data"]["id"].as_str().expect("id").to_string();
    let v = t
        .json(
            "PATCH",
            &format!("/devices/dav/{id}"),
            json!({"uri":"cloudreve://my/","name":"m"}),
        )
        .await;
    assert_eq!(v["data"]["options"], "");
    assert_eq!(v["data"]["password"], pw.as_str());
    let v = t.get("/devices/dav?page_size=10").await;
    assert_eq!(v["data"]["accounts"].as_array().map(Vec::len), Some(1));
    let v = t
        .json("DELETE", &format!("/devices/dav/{id}"), json!({}))
        .await;
    assert_eq!(v["code"], 0);
    let v = t
        .json("DELETE", &format!("/devices/dav/{id}"), json!({}))
        .await;
    assert_eq!(v["code"], 404);
}

#[tokio::test]
async fn sessions_policies_and_login_variants() {
    let t = T::new().await;
    let pol = t.get(&format!("/file?uri={}", q("cloudreve://my/"))).await["data"]["storage_policy"]
        ["id"]
        .as_str()
        .expect("policy")
        .to_string();
    // Bad policy id.
    let v = t
        .json(
            "PUT",
            "/file/upload",
            json!({"uri":"cloudreve://my/z","size":1,"policy_id":"xx"}),
        )
        .await;
    assert_eq!(v["code"], 40001);
    // Zero-byte upload completes with one empty chunk.
    let v = t
        .json(
            "PUT",
            "/file/upload",
            json!({"uri":"cloudreve://my/zero","size":0,"policy_id":pol}),
        )
        .await;
    let sid = v["data"]["session_id"].as_str().expect("sid").to_string();
    let v: Value = t
        .http
        .post(t.url(&format!("/file/upload/{sid}/0")))
        .bearer_auth(&t.token)
        .body(Vec::<u8>::new())
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(v["code"], 0, "{v}");
    // Existing target without entity_type: 40004; with "version": ok; cancel removes lock.
    let v = t
        .json(
            "PUT",
            "/file/upload",
            json!({"uri":"cloudreve://my/zero","size":3,"policy_id":pol}),
        )
        .await;
    assert_eq!(v["code"], 40004);
    let v = t
        .json(
            "PUT",
            "/file/upload",
            json!({"uri":"cloudreve://my/zero","size":3,"policy_id":pol,"entity_type":"version"}),
        )
        .await;
    assert_eq!(v["code"], 0);
    let sid = v["data"]["session_id"].as_str().expect("sid").to_string();
    // Lock removed: completion fails with "Lock expired".
    t.emu.drop_all_locks();
    let v: Value = t
        .http
        .post(t.url(&format!("/file/upload/{sid}/0")))
        .bearer_auth(&t.token)
        .body(b"abc".to_vec())
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(v["code"], 40073);
    assert_eq!(v["msg"], "Lock expired");
    assert!(v.get("data").is_none());
    let v = t
        .json(
            "DELETE",
            "/file/upload",
            json!({"id": sid, "uri":"cloudreve://my/zero"}),
        )
        .await;
    assert_eq!(v["code"], 0);
    assert_eq!(t.emu.upload_sessions("a@example.com"), 0);
    // Relay: chunk size 0; S3: chunk POST 40006.
    t.emu.set_policy_type(PolicyKind::Relay);
    let v = t
        .json(
            "PUT",
            "/file/upload",
            json!({"uri":"cloudreve://my/r","size":3,"policy_id":pol}),
        )
        .await;
    assert_eq!(v["data"]["chunk_size"], 0);
    t.emu.set_policy_type(PolicyKind::S3);
    let v = t
        .json(
            "PUT",
            "/file/upload",
            json!({"uri":"cloudreve://my/s3","size":3,"policy_id":pol}),
        )
        .await;
    let sid = v["data"]["session_id"].as_str().expect("sid").to_string();
    let v: Value = t
        .http
        .post(t.url(&format!("/file/upload/{sid}/0")))
        .bearer_auth(&t.token)
        .body(b"abc".to_vec())
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(v["code"], 40006);
    // Captcha and 2FA.
    t.emu.set_captcha_required(true);
    let v = t
        .json(
            "POST",
            "/session/token",
            json!({"email":"a@example.com","password":"password1"}),
        )
        .await;
    assert_eq!(v["code"], 40026);
    t.emu.set_captcha_required(false);
    let mut o = t.emu.user_options("a@example.com").expect("opts");
    o.otp = Some("123456".into());
    t.emu.set_user_options("a@example.com", o);
    let v = t
        .json(
            "POST",
            "/session/token",
            json!({"email":"a@example.com","password":"password1"}),
        )
        .await;
    assert_eq!(v["code"], 203);
    let sid = v["data"].as_str().expect("sid").to_string();
    let v = t
        .json(
            "POST",
            "/session/token/2fa",
            json!({"otp":"000000","session_id":sid}),
        )
        .await;
    assert_eq!(v["code"], 40022);
    let v = t
        .json(
            "POST",
            "/session/token/2fa",
            json!({"otp":"123456","session_id":sid}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
}

#[tokio::test]
async fn big_streamed_upload_and_download() {
    let t = T::new().await;
    t.emu.set_chunk_size(8 << 20);
    let size: usize = (20 << 20) + 123;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let pol = t.get(&format!("/file?uri={}", q("cloudreve://my/"))).await["data"]["storage_policy"]
        ["id"]
        .as_str()
        .expect("policy")
        .to_string();
    let v = t
        .json(
            "PUT",
            "/file/upload",
            json!({"uri":"cloudreve://my/big.bin","size":size,"policy_id":pol}),
        )
        .await;
    let sid = v["data"]["session_id"].as_str().expect("sid").to_string();
    for (i, c) in data.chunks(8 << 20).enumerate() {
        let v: Value = t
            .http
            .post(t.url(&format!("/file/upload/{sid}/{i}")))
            .bearer_auth(&t.token)
            .body(c.to_vec())
            .send()
            .await
            .expect("s")
            .json()
            .await
            .expect("j");
        assert_eq!(v["code"], 0, "{v}");
    }
    let v = t
        .json(
            "POST",
            "/file/url",
            json!({"uris":["cloudreve://my/big.bin"]}),
        )
        .await;
    let url = v["data"]["urls"][0]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let got = t
        .http
        .get(&url)
        .send()
        .await
        .expect("g")
        .bytes()
        .await
        .expect("b");
    assert!(got.as_ref() == data.as_slice());
    let r = t
        .http
        .get(&url)
        .header("Range", format!("bytes={}-", size - 10))
        .send()
        .await
        .expect("g");
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.expect("b").as_ref(), &data[size - 10..]);
    let v = t.get("/user/capacity").await;
    assert_eq!(v["data"]["used"], size);
}

#[tokio::test]
async fn expiry_of_sessions_and_trash() {
    let t = T::new().await;
    let pol = t.get(&format!("/file?uri={}", q("cloudreve://my/"))).await["data"]["storage_policy"]
        ["id"]
        .as_str()
        .expect("policy")
        .to_string();
    let v = t
        .json(
            "PUT",
            "/file/upload",
            json!({"uri":"cloudreve://my/e/p.bin","size":5,"policy_id":pol}),
        )
        .await;
    let sid = v["data"]["session_id"].as_str().expect("sid").to_string();
    let v = t
        .json(
            "POST",
            "/file/create",
            json!({"uri":"cloudreve://my/t.txt","type":"file"}),
        )
        .await;
    assert_eq!(v["code"], 0);
    let v = t
        .json("DELETE", "/file", json!({"uris":["cloudreve://my/t.txt"]}))
        .await;
    assert_eq!(v["code"], 0);
    assert_eq!(t.emu.active_locks("a@example.com").len(), 1);
    t.emu
        .advance_clock(std::time::Duration::from_secs(8 * 86400));
    // Access token expired too: sign in again.
    let v = t
        .json(
            "POST",
            "/session/token",
            json!({"email":"a@example.com","password":"password1"}),
        )
        .await;
    let token = v["data"]["token"]["access_token"]
        .as_str()
        .expect("t")
        .to_string();
    let v: Value = t
        .http
        .post(t.url(&format!("/file/upload/{sid}/0")))
        .bearer_auth(&token)
        .body(b"12345".to_vec())
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(v["code"], 40011);
    assert!(t.emu.active_locks("a@example.com").is_empty());
    let v: Value = t
        .http
        .get(t.url(&format!("/file?uri={}", q("cloudreve://trash"))))
        .bearer_auth(&token)
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(v["data"]["files"].as_array().map(Vec::len), Some(0), "{v}");
    let v: Value = t
        .http
        .get(t.url(&format!("/file?uri={}", q("cloudreve://my/e"))))
        .bearer_auth(&token)
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(v["data"]["files"].as_array().map(Vec::len), Some(0), "{v}");
}

/// Moves 512 MiB through chunks and back without buffering (run with `--ignored`).
#[tokio::test]
#[ignore]
async fn half_gib_round_trip() {
    let t = T::new().await;
    let size: u64 = 512 << 20;
    let chunk: u64 = 25 << 20;
    let pol = t.get(&format!("/file?uri={}", q("cloudreve://my/"))).await["data"]["storage_policy"]
        ["id"]
        .as_str()
        .expect("policy")
        .to_string();
    let v = t
        .json(
            "PUT",
            "/file/upload",
            json!({"uri":"cloudreve://my/huge.bin","size":size,"policy_id":pol}),
        )
        .await;
    let sid = v["data"]["session_id"].as_str().expect("sid").to_string();
    let start = std::time::Instant::now();
    let mut i = 0u64;
    while i * chunk < size {
        let len = chunk.min(size - i * chunk);
        let stream = futures::stream::iter(
            (0..len / (1 << 20))
                .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0x5a_u8; 1 << 20]))),
        );
        let v: Value = t
            .http
            .post(t.url(&format!("/file/upload/{sid}/{i}")))
            .bearer_auth(&t.token)
            .header("content-length", len)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .expect("s")
            .json()
            .await
            .expect("j");
        assert_eq!(v["code"], 0, "{v}");
        i += 1;
    }
    let v = t
        .json(
            "POST",
            "/file/url",
            json!({"uris":["cloudreve://my/huge.bin"]}),
        )
        .await;
    let url = v["data"]["urls"][0]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let mut r = t.http.get(&url).send().await.expect("g");
    let mut total = 0u64;
    while let Some(c) = r.chunk().await.expect("chunk") {
        total += c.len() as u64;
    }
    assert_eq!(total, size);
    eprintln!("512 MiB up+down in {:?}", start.elapsed());
}
