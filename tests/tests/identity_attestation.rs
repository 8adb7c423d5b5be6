//! Attestation end to end: the EK certificate swtpm's manufacturing CA issued, an attestation
//! key in the TPM, quotes over PCRs 0-7 and 11 verified by `roomctl identity verify`; replayed,
//! tampered and foreign quotes are refused.

use base64::Engine;
use roomd_attestation::{DeviceCheckError, QuoteError, challenge_ak_binding, check_device};
use roomd_tests::{HarnessError, Roomd, Swtpm};
use serde_json::{Value, json};

fn quote(roomd: &Roomd, token: &str, nonce: &[u8]) -> Result<Value, HarnessError> {
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    roomd
        .request("POST", "/api/v1/identity/quote")
        .bearer(token)
        .json(&json!({ "nonce": hex }))
        .send()?
        .expect_status(200, "POST identity/quote")?
        .json()
}

fn identity(roomd: &Roomd, token: &str) -> Result<Value, HarnessError> {
    roomd
        .get("/api/v1/identity")
        .bearer(token)
        .send()?
        .expect_status(200, "GET identity")?
        .json()
}

#[test]
fn roomctl_verifies_the_device_end_to_end() -> Result<(), HarnessError> {
    let tpm = Swtpm::start()?;
    let ek_ca = tpm.ek_ca_bundle()?;
    let ek_ca = ek_ca.to_str().unwrap_or_default();
    let roomd = Roomd::start_claimed(&tpm.identity_toml())?;
    let auditor = roomd.token_for("audit")?;

    let run = roomd.roomctl(Some(&auditor), &["identity", "verify", "--ek-ca", ek_ca])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON report");
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["attestation_key_bound_to_ek"], true, "{report}");
    let digest = report["pcr_digest"].as_str().unwrap_or_default().to_owned();
    assert_eq!(digest.len(), 64, "{report}");
    let pcrs = report["pcrs"].as_object().map(|m| m.len());
    assert_eq!(pcrs, Some(9), "{report}");

    // The expected boot state: the same digest passes, any other fails.
    let run = roomd.roomctl(
        Some(&auditor),
        &[
            "identity",
            "verify",
            "--ek-ca",
            ek_ca,
            "--pcr-digest",
            &digest,
        ],
    )?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let other = "00".repeat(32);
    let run = roomd.roomctl(
        Some(&auditor),
        &[
            "identity",
            "verify",
            "--ek-ca",
            ek_ca,
            "--pcr-digest",
            &other,
        ],
    )?;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("PCR digest"), "{}", run.stderr);
    Ok(())
}

#[test]
fn an_ek_certificate_from_an_untrusted_ca_is_refused() -> Result<(), HarnessError> {
    let tpm = Swtpm::start()?;
    let roomd = Roomd::start_claimed(&tpm.identity_toml())?;
    let auditor = roomd.token_for("audit")?;
    // A CA that did not make this TPM.
    let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "swtpm-localca");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("key");
    let pem = params.self_signed(&key).expect("CA").pem();
    let path = tpm.dir().join("other-ca.pem");
    std::fs::write(&path, pem).expect("write CA");
    let run = roomd.roomctl(
        Some(&auditor),
        &[
            "identity",
            "verify",
            "--ek-ca",
            path.to_str().unwrap_or_default(),
        ],
    )?;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("EK certificate"), "{}", run.stderr);
    Ok(())
}

#[test]
fn replayed_tampered_and_foreign_quotes_are_refused() -> Result<(), HarnessError> {
    let tpm = Swtpm::start()?;
    let ca = std::fs::read(tpm.ek_ca_bundle()?).expect("EK CA bundle");
    let roomd = Roomd::start_claimed(&tpm.identity_toml())?;
    let token = roomd.token_for("integrator")?;
    let device = identity(&roomd, &token)?;
    let nonce = b"verifier nonce 1";
    let good = quote(&roomd, &token, nonce)?;
    assert!(check_device(&device, &good, nonce, &ca, None).is_ok());

    // Replay: a quote made for another nonce.
    let err = check_device(&device, &good, b"verifier nonce 2", &ca, None).unwrap_err();
    assert!(
        matches!(err, DeviceCheckError::Quote(QuoteError::WrongNonce)),
        "{err}"
    );

    // Tampered: one bit of the signed structure flipped.
    let engine = base64::engine::general_purpose::STANDARD;
    let mut attest = engine
        .decode(good["attest"].as_str().unwrap_or_default())
        .expect("base64");
    let last = attest.len() - 1;
    attest[last] ^= 1;
    let mut tampered = good.clone();
    tampered["attest"] = Value::String(engine.encode(&attest));
    let err = check_device(&device, &tampered, nonce, &ca, None).unwrap_err();
    assert!(
        matches!(err, DeviceCheckError::Quote(QuoteError::BadSignature)),
        "{err}"
    );

    // Reported PCR values that are not the ones quoted.
    let mut lied = good.clone();
    lied["pcrs"]["0"] = Value::String("11".repeat(32));
    let err = check_device(&device, &lied, nonce, &ca, None).unwrap_err();
    assert!(
        matches!(err, DeviceCheckError::Quote(QuoteError::PcrDigestMismatch)),
        "{err}"
    );

    // Foreign: a quote from another device's attestation key, presented as this device's.
    let other_tpm = Swtpm::start()?;
    let other = Roomd::start_claimed(&other_tpm.identity_toml())?;
    let other_token = other.token_for("integrator")?;
    let foreign = quote(&other, &other_token, nonce)?;
    let err = check_device(&device, &foreign, nonce, &ca, None).unwrap_err();
    assert!(matches!(err, DeviceCheckError::AkChanged), "{err}");
    let mut disguised = foreign.clone();
    disguised["attestation_key"] = device["attestation_key"].clone();
    let err = check_device(&device, &disguised, nonce, &ca, None).unwrap_err();
    assert!(
        matches!(err, DeviceCheckError::Quote(QuoteError::BadSignature)),
        "{err}"
    );
    Ok(())
}

#[test]
fn quotes_need_a_tpm_a_good_nonce_and_a_role_that_may_attest() -> Result<(), HarnessError> {
    let tpm = Swtpm::start()?;
    let roomd = Roomd::start_claimed(&tpm.identity_toml())?;
    let admin = roomd.admin_token()?;
    for bad in ["", "abc", "zz".repeat(8).as_str(), "ab".repeat(33).as_str()] {
        let response = roomd
            .request("POST", "/api/v1/identity/quote")
            .bearer(&admin)
            .json(&json!({ "nonce": bad }))
            .send()?;
        assert_eq!(response.status, 422, "{bad:?}: {}", response.text());
    }
    for (role, expected) in [
        ("integrator", 200),
        ("audit", 200),
        ("user", 403),
        ("room-control", 403),
    ] {
        let token = roomd.token_for(role)?;
        let response = roomd
            .request("POST", "/api/v1/identity/quote")
            .bearer(&token)
            .json(&json!({ "nonce": "00112233445566778899" }))
            .send()?;
        assert_eq!(response.status, expected, "{role}: {}", response.text());
    }
    let device = identity(&roomd, &admin)?;
    assert!(
        device["ek_certificate"]
            .as_str()
            .is_some_and(|p| p.contains("BEGIN CERTIFICATE"))
    );

    let software = Roomd::start_claimed("")?;
    let response = software
        .request("POST", "/api/v1/identity/quote")
        .bearer(&software.admin_token()?)
        .json(&json!({ "nonce": "00112233445566778899" }))
        .send()?;
    assert_eq!(response.status, 409, "{}", response.text());
    Ok(())
}

#[test]
fn an_attestation_key_from_another_tpm_fails_the_credential_challenge() -> Result<(), HarnessError>
{
    let tpm = Swtpm::start()?;
    let ca = std::fs::read(tpm.ek_ca_bundle()?).expect("EK CA bundle");
    let roomd = Roomd::start_claimed(&tpm.identity_toml())?;
    let token = roomd.token_for("audit")?;
    let device = identity(&roomd, &token)?;
    let activate = |body: &Value| {
        roomd
            .request("POST", "/api/v1/identity/activate")
            .bearer(&token)
            .json(body)
            .send()
    };

    // The genuine AK answers its challenge.
    let challenge = challenge_ak_binding(&device, &ca).expect("challenge");
    let answer = activate(&challenge.request)?
        .expect_status(200, "activate")?
        .json()?;
    challenge
        .check_answer(&answer)
        .expect("the credential comes back");
    // A replayed or made-up answer does not pass.
    let other_challenge = challenge_ak_binding(&device, &ca).expect("challenge");
    let err = other_challenge.check_answer(&answer).unwrap_err();
    assert!(matches!(err, DeviceCheckError::NotActivated), "{err}");

    // Another TPM's AK, presented with this device's EK certificate: this TPM cannot release a
    // credential made for a key it does not hold.
    let other_tpm = Swtpm::start()?;
    let other = Roomd::start_claimed(&other_tpm.identity_toml())?;
    let foreign = identity(&other, &other.token_for("audit")?)?;
    let mut disguised = device.clone();
    disguised["attestation_key"] = foreign["attestation_key"].clone();
    disguised["attestation_key_public_area"] = foreign["attestation_key_public_area"].clone();
    let challenge = challenge_ak_binding(&disguised, &ca).expect("challenge");
    let response = activate(&challenge.request)?;
    assert_eq!(response.status, 422, "{}", response.text());

    // A public area that does not describe the reported key is caught before asking.
    let mut mixed = device.clone();
    mixed["attestation_key_public_area"] = foreign["attestation_key_public_area"].clone();
    let err = challenge_ak_binding(&mixed, &ca).err().expect("refused");
    assert!(matches!(err, DeviceCheckError::AkMismatch), "{err}");
    Ok(())
}
