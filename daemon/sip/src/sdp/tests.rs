use proptest::prelude::*;

use super::*;

fn local() -> LocalMedia {
    LocalMedia {
        address: "10.77.1.1".parse().unwrap(),
        audio_port: 40000,
        video_port: 40002,
        content_port: 40004,
        floor: None,
        session_id: 42,
        dtls_fingerprint: [0xAB; FINGERPRINT_LEN],
        floor_tls_fingerprint: [0xCD; FINGERPRINT_LEN],
        camera_codec: VideoCodec::H264,
    }
}

/// An answer as baresip 1.0 with srtp-mand writes it (PCMU chosen, H.264 mode 1).
fn baresip_answer(audio_proto: &str, video_proto: &str) -> String {
    let key = SdesKey::random().to_base64();
    format!(
        "v=0\r\no=- 123 456 IN IP4 10.77.1.2\r\ns=-\r\nc=IN IP4 10.77.1.2\r\nt=0 0\r\n\
         m=audio 10000 {audio_proto} 0\r\na=rtpmap:0 PCMU/8000\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\na=sendrecv\r\n\
         m=video 10002 {video_proto} 96\r\na=rtpmap:96 H264/90000\r\n\
         a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\na=rtcp:10005\r\na=sendrecv\r\n"
    )
}

#[test]
fn the_offer_carries_two_fresh_keys_and_parses_as_an_answer_to_itself() {
    let offer = make_offer(&local());
    assert_ne!(offer.audio_key, offer.video_key);
    assert!(
        offer
            .sdp
            .contains("m=audio 40000 RTP/SAVP 111 9 0 8 101\r\n")
    );
    assert!(offer.sdp.contains("packetization-mode=1"));
    // The fingerprint beside the keys, for peers that key by DTLS only.
    assert_eq!(offer.sdp.matches("a=setup:actpass\r\n").count(), 2);
    assert_eq!(offer.sdp.matches("a=fingerprint:sha-256 AB:AB:").count(), 2);
    // Read as an answer, the keys win: a=crypto says SDES.
    let agreed = parse_answer(&offer.sdp, true, None).unwrap();
    let audio = agreed.audio.as_ref().unwrap();
    assert_eq!(audio.codec, AudioCodec::Opus);
    assert!(matches!(&audio.keying, FarEndKeying::Sdes { key, .. } if *key == offer.audio_key));
    assert_eq!(audio.remote_rtcp.port(), 40001);
    assert_eq!(audio.telephone_event, Some(101));
    let video = agreed.video.as_ref().unwrap();
    assert_eq!(video.codec, VideoCodec::H264);
    assert!(matches!(&video.keying, FarEndKeying::Sdes { key, .. } if *key == offer.video_key));
    assert!(agreed.encrypted());
    assert_eq!(format!("{:?}", offer.audio_key), "SdesKey(…)");
}

#[test]
fn the_plain_offer_has_no_keys_and_is_refused_as_an_answer_under_required_encryption() {
    let plain = make_plain_offer(&make_offer(&local()));
    assert!(!plain.sdp.contains("a=crypto") && !plain.sdp.contains("SAVP"));
    assert!(!plain.sdp.contains("a=fingerprint") && !plain.sdp.contains("a=setup"));
    assert!(
        plain
            .sdp
            .contains("m=audio 40000 RTP/AVP 111 9 0 8 101\r\n")
    );
    assert_eq!(
        parse_answer(&plain.sdp, true, None),
        Err(SdpError::Unencrypted("audio"))
    );
    assert!(!parse_answer(&plain.sdp, false, None).unwrap().encrypted());
}

#[test]
fn an_srtp_answer_is_agreed_with_the_far_ends_keys_and_ports() {
    let agreed = parse_answer(&baresip_answer("RTP/SAVP", "RTP/SAVP"), true, None).unwrap();
    let audio = agreed.audio.unwrap();
    assert_eq!((audio.codec, audio.payload_type), (AudioCodec::Pcmu, 0));
    assert_eq!(audio.remote_rtp, "10.77.1.2:10000".parse().unwrap());
    let video = agreed.video.unwrap();
    assert_eq!(video.remote_rtcp, "10.77.1.2:10005".parse().unwrap());
}

#[test]
fn plain_rtp_is_refused_while_encryption_is_required() {
    let answer = baresip_answer("RTP/AVP", "RTP/SAVP");
    assert_eq!(
        parse_answer(&answer, true, None),
        Err(SdpError::Unencrypted("audio"))
    );
    let agreed = parse_answer(&answer, false, None).unwrap();
    assert_eq!(agreed.audio.as_ref().unwrap().keying, FarEndKeying::Plain);
    assert!(!agreed.encrypted());
    assert!(
        SdpError::Unencrypted("video")
            .to_string()
            .contains("meeting.require_encryption")
    );
}

#[test]
fn answers_without_keys_codecs_or_media_say_why() {
    let no_key = baresip_answer("RTP/SAVP", "RTP/SAVP").replace("a=crypto", "a=x-crypto");
    assert_eq!(
        parse_answer(&no_key, true, None),
        Err(SdpError::NoKey("audio"))
    );
    let dtls = baresip_answer("UDP/TLS/RTP/SAVP", "RTP/SAVP");
    assert_eq!(
        parse_answer(&dtls, true, None),
        Err(SdpError::NoFingerprint("audio"))
    );
    let tcp = baresip_answer("TCP/RTP/AVP", "RTP/SAVP");
    assert!(matches!(
        parse_answer(&tcp, true, None),
        Err(SdpError::Unsupported(_) | SdpError::Malformed(_))
    ));
    let refused = baresip_answer("RTP/SAVP", "RTP/SAVP")
        .replace("m=audio 10000", "m=audio 0")
        .replace("m=video 10002", "m=video 0");
    assert_eq!(
        parse_answer(&refused, true, None),
        Err(SdpError::NoUsableMedia)
    );
    let vp9_only = baresip_answer("RTP/SAVP", "RTP/SAVP").replace("H264", "VP9");
    let agreed = parse_answer(&vp9_only, true, None).unwrap();
    assert!(agreed.video.is_none() && agreed.audio.is_some());
    assert_eq!(
        parse_answer(&"a".repeat(SDP_MAX_BYTES + 1), true, None),
        Err(SdpError::TooLarge)
    );
    assert!(matches!(
        parse_answer("not sdp", true, None),
        Err(SdpError::Malformed(_))
    ));
}

#[test]
fn a_key_lifetime_past_2_to_the_31_is_refused_not_a_panic() {
    // ezk-sdp-types 0.6.1 computes 2u32.pow(32) for this line (the property test found it).
    let with_lifetime = |lifetime: &str| {
        baresip_answer("RTP/SAVP", "RTP/SAVP")
            .split("\r\n")
            .map(|line| match line.starts_with("a=crypto") {
                true => format!("{line}|{lifetime}"),
                false => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    assert!(matches!(
        parse_answer(&with_lifetime("2^32"), true, None),
        Err(SdpError::Malformed(_))
    ));
    assert!(parse_answer(&with_lifetime("2^31"), true, None).is_ok());
}

#[test]
fn sdes_keys_decode_only_at_their_length() {
    let key = SdesKey::random();
    assert_eq!(SdesKey::from_base64(&key.to_base64()), Some(key.clone()));
    // Without padding, as some peers write it.
    let unpadded = key.to_base64().trim_end_matches('=').to_owned();
    assert_eq!(SdesKey::from_base64(&unpadded), Some(key));
    assert_eq!(SdesKey::from_base64("c2hvcnQ="), None);
    assert_eq!(SdesKey::from_base64(&"A".repeat(100)), None);
    assert_eq!(SdesKey::from_base64("!!!"), None);
}

/// Lines an SDP answer is made of, with the fields the parser and `agree` look at.
fn sdp_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v=0".to_owned()),
        Just("o=- 1 1 IN IP4 10.0.0.1".to_owned()),
        Just("s=-".to_owned()),
        Just("t=0 0".to_owned()),
        "c=IN IP[46] [0-9a-f.:]{0,20}",
        "m=(audio|video|text) [0-9]{1,6}(/[0-9])? (RTP/S?AVPF?|UDP/TLS/RTP/SAVPF?|[A-Z/]{1,8})( [0-9]{1,4}){0,4}",
        "a=rtpmap:[0-9]{1,4} (opus|PCMU|PCMA|H264|VP8)/[0-9]{1,6}(/[0-9])?",
        "a=fmtp:[0-9]{1,4} [a-z=;0-9-]{0,40}",
        "a=crypto:[0-9]{1,3} (AES_CM_128_HMAC_SHA1_80|[A-Z_0-9]{1,30}) inline:[A-Za-z0-9+/=]{0,60}(\\|[0-9^]{1,6})?",
        "a=rtcp:[0-9]{1,6}( IN IP4 [0-9.]{0,15})?",
        "a=fingerprint:(sha-256|sha-1|SHA-512|[a-z0-9-]{1,8}) ([0-9A-F]{2}:){0,33}[0-9A-F]{0,3}",
        "a=setup:(active|passive|actpass|holdconn|[a-z]{0,8})",
        Just("a=rtcp-mux".to_owned()),
        "a=[a-z-]{1,12}(:[ -~]{0,30})?",
        "[ -~]{0,40}",
    ]
}

/// An offer as baresip 1.0 with srtp-mand writes it: G.711 first, Opus, H.264 in both
/// packetization modes, an application section the room does not take.
fn baresip_offer(audio_proto: &str) -> String {
    let key = SdesKey::random().to_base64();
    format!(
        "v=0\r\no=- 1 2 IN IP4 10.77.1.2\r\ns=-\r\nc=IN IP4 10.77.1.2\r\nt=0 0\r\n\
         m=audio 20000 {audio_proto} 0 8 96 101\r\na=rtpmap:96 opus/48000/2\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\na=sendrecv\r\n\
         m=video 20002 {audio_proto} 100 97\r\na=rtpmap:100 H264/90000\r\n\
         a=fmtp:100 packetization-mode=0\r\na=rtpmap:97 H264/90000\r\n\
         a=fmtp:97 packetization-mode=1;profile-level-id=42e01f\r\n\
         a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\na=sendrecv\r\n\
         m=application 20004 UDP/BFCP *\r\n"
    )
}

#[test]
fn an_offer_is_answered_with_the_callers_payload_types_and_tags_and_the_rooms_keys() {
    let offered = parse_offer(&baresip_offer("RTP/SAVP"), true, None).unwrap();
    let audio = offered.agreed.audio.clone().unwrap();
    // The room's preference (Opus) over the caller's order (G.711 first).
    assert_eq!((audio.codec, audio.payload_type), (AudioCodec::Opus, 96));
    assert_eq!(audio.telephone_event, Some(101));
    assert!(matches!(audio.keying, FarEndKeying::Sdes { tag: 7, .. }));
    let video = offered.agreed.video.clone().unwrap();
    assert_eq!(video.payload_type, 97);
    assert!(matches!(video.keying, FarEndKeying::Sdes { tag: 3, .. }));
    assert_eq!(offered.sections.len(), 3);
    let answer = make_answer(&local(), &offered);
    let text = &answer.sdp;
    assert!(text.contains("m=audio 40000 RTP/SAVP 96 101\r\n"), "{text}");
    assert!(text.contains("a=rtpmap:96 opus/48000/2"), "{text}");
    assert!(
        text.contains(&format!(
            "a=crypto:7 {SRTP_SUITE} inline:{}",
            answer.audio_key.to_base64()
        )),
        "{text}"
    );
    assert!(text.contains("m=video 40002 RTP/SAVP 97\r\n"), "{text}");
    assert!(
        text.contains(&format!(
            "a=crypto:3 {SRTP_SUITE} inline:{}",
            answer.video_key.to_base64()
        )),
        "{text}"
    );
    // The section the room does not take is refused in place (port 0).
    assert!(text.ends_with("m=application 0 UDP/BFCP *\r\n"), "{text}");
    // The answer parses as the room's own media, both streams SRTP.
    let back = parse_answer(text, true, None).unwrap();
    assert!(
        matches!(&back.audio.unwrap().keying, FarEndKeying::Sdes { key, .. } if *key == answer.audio_key)
    );
    assert!(
        matches!(&back.video.unwrap().keying, FarEndKeying::Sdes { key, .. } if *key == answer.video_key)
    );
}

#[test]
fn a_plain_offer_is_refused_under_required_encryption_and_answered_plain_otherwise() {
    assert_eq!(
        parse_offer(&baresip_offer("RTP/AVP"), true, None),
        Err(SdpError::Unencrypted("audio"))
    );
    let offered = parse_offer(&baresip_offer("RTP/AVP"), false, None).unwrap();
    assert!(!offered.agreed.encrypted());
    let answer = make_answer(&local(), &offered).sdp;
    assert!(!answer.contains("a=crypto"), "{answer}");
    assert!(answer.contains("m=audio 40000 RTP/AVP 96 101"), "{answer}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any offer text: an error or an answer, never a panic.
    #[test]
    fn arbitrary_offers_never_panic(lines in proptest::collection::vec(sdp_line(), 0..24)) {
        let text = lines.join("\r\n");
        for require in [true, false] {
            if let Ok(offered) = parse_offer(&text, require, None) {
                let _ = make_answer(&local(), &offered);
            }
        }
    }

    /// Any text at all: an error or an answer, never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = parse_answer(&text, true, None);
        let _ = parse_answer(&text, false, None);
    }

    /// Answers built from plausible lines (what reaches `agree`): never a panic, and whatever
    /// is agreed is consistent.
    #[test]
    fn plausible_answers_never_panic(lines in proptest::collection::vec(sdp_line(), 0..24)) {
        let text = lines.join("\r\n");
        for require in [true, false] {
            if let Ok(agreed) = parse_answer(&text, require, None) {
                prop_assert!(agreed.audio.is_some() || agreed.video.is_some());
                if require {
                    prop_assert!(agreed.encrypted());
                }
            }
        }
    }

    /// The room's own offer, with any one line replaced by garbage: never a panic.
    #[test]
    fn mutated_offers_never_panic(index in 0usize..24, garbage in "[ -~]{0,60}") {
        let offer = make_offer(&local()).sdp;
        let mut lines: Vec<&str> = offer.split("\r\n").collect();
        if !lines.is_empty() {
            let i = index % lines.len();
            lines[i] = &garbage;
        }
        let _ = parse_answer(&lines.join("\r\n"), true, None);
    }
}

#[test]
fn g722_is_chosen_after_opus_and_before_g711_whatever_the_far_ends_order() {
    let offer = make_offer(&local());
    assert!(offer.sdp.contains("a=rtpmap:9 G722/8000\r\n"));
    // A phone listing G.711 first and G.722 (static type 9, no rtpmap) second.
    let answer = offer
        .sdp
        .replace("RTP/SAVP 111 9 0 8 101", "RTP/SAVP 0 9 101")
        .replace("a=rtpmap:9 G722/8000\r\n", "");
    // As a caller's offer, the room answers in its own order: G.722 before G.711.
    let offered = parse_offer(&answer, true, None).unwrap();
    let audio = offered.agreed.audio.as_ref().unwrap();
    assert_eq!(audio.codec, AudioCodec::G722);
    assert_eq!(audio.payload_type, 9);
    let ours = make_answer(&local(), &offered);
    assert!(
        ours.sdp
            .contains("RTP/SAVP 9 101\r\na=rtpmap:9 G722/8000\r\n"),
        "{}",
        ours.sdp
    );
    // As an answer to the room's offer, the far end's first choice is what it sends.
    let agreed = parse_answer(&answer, true, None).unwrap();
    assert_eq!(agreed.audio.as_ref().unwrap().codec, AudioCodec::Pcmu);
}

/// An offer as baresip 1.0 with `mediaenc=dtls_srtp` writes it: the fingerprint at session
/// level, a=setup per section, RTCP on its own port.
fn baresip_dtls_offer(setup: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 10.77.1.2\r\ns=-\r\nc=IN IP4 10.77.1.2\r\nt=0 0\r\n\
         a=fingerprint:sha-256 {}\r\n\
         m=audio 10000 UDP/TLS/RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=setup:{setup}\r\n{extra}a=sendrecv\r\n\
         m=video 10002 UDP/TLS/RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n\
         a=fmtp:96 packetization-mode=1\r\na=setup:{setup}\r\n{extra}a=sendrecv\r\n",
        ["12"; 32].join(":")
    )
}

#[test]
fn a_dtls_offer_is_answered_active_with_the_rooms_fingerprint() {
    let offered = parse_offer(&baresip_dtls_offer("actpass", ""), true, None).unwrap();
    let audio = offered.agreed.audio.clone().unwrap();
    assert_eq!(
        audio.keying,
        FarEndKeying::Dtls {
            fingerprint: [0x12; FINGERPRINT_LEN],
            room_is_client: true,
            rtcp_mux: false
        }
    );
    assert_eq!(audio.remote_rtcp.port(), 10001);
    assert!(offered.agreed.encrypted());
    let answer = make_answer(&local(), &offered).sdp;
    assert!(
        answer.contains("m=audio 40000 UDP/TLS/RTP/SAVP 0 101\r\n"),
        "{answer}"
    );
    assert!(answer.contains("a=setup:active\r\n"), "{answer}");
    let ours = format!("a=fingerprint:sha-256 {}\r\n", ["AB"; 32].join(":"));
    assert_eq!(answer.matches(&ours).count(), 2, "{answer}");
    assert!(
        !answer.contains("a=crypto") && !answer.contains("rtcp-mux"),
        "{answer}"
    );
    // Read back as the far end would: the room is the active side, its own fingerprint.
    let back = parse_answer(&answer, true, None).unwrap();
    assert_eq!(
        back.audio.unwrap().keying,
        FarEndKeying::Dtls {
            fingerprint: [0xAB; FINGERPRINT_LEN],
            room_is_client: false,
            rtcp_mux: false
        }
    );
}

#[test]
fn the_dtls_role_follows_the_far_ends_setup_and_rtcp_mux_is_echoed() {
    let passive =
        parse_offer(&baresip_dtls_offer("passive", "a=rtcp-mux\r\n"), true, None).unwrap();
    let video = passive.agreed.video.clone().unwrap();
    assert!(matches!(
        video.keying,
        FarEndKeying::Dtls {
            room_is_client: true,
            rtcp_mux: true,
            ..
        }
    ));
    // Multiplexed: RTCP goes to the RTP port.
    assert_eq!(video.remote_rtcp, video.remote_rtp);
    let answer = make_answer(&local(), &passive).sdp;
    assert!(answer.contains("a=setup:active\r\n") && answer.contains("a=rtcp-mux\r\n"));
    let active = parse_offer(&baresip_dtls_offer("active", ""), true, None).unwrap();
    assert!(matches!(
        active.agreed.audio.clone().unwrap().keying,
        FarEndKeying::Dtls {
            room_is_client: false,
            ..
        }
    ));
    assert!(
        make_answer(&local(), &active)
            .sdp
            .contains("a=setup:passive\r\n")
    );
    assert!(matches!(
        parse_offer(&baresip_dtls_offer("holdconn", ""), true, None),
        Err(SdpError::Unsupported(_))
    ));
    // Only SHA-256 fingerprints are taken.
    let sha1 = baresip_dtls_offer("actpass", "")
        .replace(
            "sha-256 12:12:12:12:12:12:12:12:12:12:12:12:12:12:12:12:12:12:12:12:",
            "sha-1 ",
        )
        .replace(":12:12:12:12:12:12:12:12:12:12:12:12\r\n", "\r\n");
    assert_eq!(
        parse_offer(&sha1, true, None),
        Err(SdpError::NoFingerprint("audio"))
    );
    // DTLS over RTP/SAVP (a fingerprint and no a=crypto), as baresip answers an SDES offer.
    let legacy = baresip_dtls_offer("active", "").replace("UDP/TLS/RTP/SAVP", "RTP/SAVP");
    let agreed = parse_answer(&legacy, true, None).unwrap();
    assert!(matches!(
        agreed.video.unwrap().keying,
        FarEndKeying::Dtls {
            room_is_client: false,
            ..
        }
    ));
}

#[test]
fn the_dtls_offer_replaces_keys_with_the_fingerprint_and_reads_back_as_dtls() {
    let sdes = make_offer(&local());
    let dtls = make_dtls_offer(&sdes);
    let text = &dtls.sdp;
    assert!(
        !text.contains("a=crypto") && !text.contains(" RTP/SAVP "),
        "{text}"
    );
    assert!(
        text.contains("m=audio 40000 UDP/TLS/RTP/SAVP 111 9 0 8 101\r\n"),
        "{text}"
    );
    assert_eq!(text.matches("a=setup:actpass\r\n").count(), 2, "{text}");
    assert_eq!(text.matches("a=rtcp-mux\r\n").count(), 2, "{text}");
    let offered = parse_offer(text, true, None).unwrap();
    assert!(matches!(
        offered.agreed.audio.unwrap().keying,
        FarEndKeying::Dtls {
            fingerprint: [0xAB, ..],
            room_is_client: true,
            rtcp_mux: true
        }
    ));
}

#[test]
fn vp8_is_offered_after_the_cameras_codec_and_taken_where_it_is_all_the_far_end_has() {
    let offer = make_offer(&local()).sdp;
    assert!(
        offer.contains("m=video 40002 RTP/SAVP 96 97\r\n"),
        "{offer}"
    );
    assert!(offer.contains("a=rtpmap:97 VP8/90000\r\n"), "{offer}");
    let vp8_camera = LocalMedia {
        camera_codec: VideoCodec::Vp8,
        ..local()
    };
    assert!(
        make_offer(&vp8_camera)
            .sdp
            .contains("m=video 40002 RTP/SAVP 97 96\r\n")
    );
    // A far end with VP8 only: agreed, and answered as VP8.
    let vp8_only = baresip_answer("RTP/SAVP", "RTP/SAVP").replace("H264", "VP8");
    let agreed = parse_answer(&vp8_only, true, None).unwrap();
    assert_eq!(agreed.video.as_ref().unwrap().codec, VideoCodec::Vp8);
    let offered = parse_offer(&vp8_only, true, None).unwrap();
    let answer = make_answer(&local(), &offered).sdp;
    assert!(
        answer.contains("m=video 40002 RTP/SAVP 96\r\na=rtpmap:96 VP8/90000\r\n"),
        "{answer}"
    );
    assert!(!answer.contains("packetization-mode"), "{answer}");
    // Both offered, VP8 first: the room takes the codec its camera sends.
    let both = baresip_offer("RTP/SAVP")
        .replace(
            "m=video 20002 RTP/SAVP 100 97",
            "m=video 20002 RTP/SAVP 98 97",
        )
        .replace(
            "a=rtpmap:100 H264/90000\r\na=fmtp:100 packetization-mode=0\r\n",
            "a=rtpmap:98 VP8/90000\r\n",
        );
    let mut offered = parse_offer(&both, true, None).unwrap();
    assert_eq!(
        offered.video_choices,
        vec![(98, VideoCodec::Vp8), (97, VideoCodec::H264)]
    );
    assert_eq!(
        offered.agreed.video.as_ref().unwrap().codec,
        VideoCodec::Vp8
    );
    offered.prefer_video(VideoCodec::H264);
    let video = offered.agreed.video.as_ref().unwrap();
    assert_eq!((video.codec, video.payload_type), (VideoCodec::H264, 97));
    assert!(
        make_answer(&local(), &offered)
            .sdp
            .contains("a=rtpmap:97 H264/90000")
    );
    offered.prefer_video(VideoCodec::Vp8);
    assert_eq!(offered.agreed.video.as_ref().unwrap().payload_type, 98);
}

#[test]
fn the_far_ends_bandwidth_is_read_as_media_kbps() {
    let with = |lines: &str| {
        let answer = baresip_answer("RTP/SAVP", "RTP/SAVP").replace(
            "m=video 10002 RTP/SAVP 96\r\n",
            &format!("m=video 10002 RTP/SAVP 96\r\n{lines}"),
        );
        parse_answer(&answer, true, None)
            .unwrap()
            .video
            .unwrap()
            .max_kbps
    };
    assert_eq!(with(""), None);
    // AS counts packet headers: 5 % less for the media.
    assert_eq!(with("b=AS:400\r\n"), Some(380));
    // TIAS is the media alone, in bit/s; it wins over AS.
    assert_eq!(with("b=AS:400\r\nb=TIAS:256000\r\n"), Some(256));
    assert_eq!(with("b=AS:0\r\n"), None);
    // A session-level limit stands for a section without its own.
    let session =
        baresip_answer("RTP/SAVP", "RTP/SAVP").replace("t=0 0\r\n", "t=0 0\r\nb=AS:1000\r\n");
    let session = parse_answer(&session, true, None).unwrap();
    assert_eq!(session.video.unwrap().max_kbps, Some(950));
}

// --- Content and BFCP (RFC 4796, RFC 8856) ---------------------------------------------------

const FLOOR: LocalFloor = LocalFloor {
    conference_id: 4321,
    far_end_user_id: 2,
    room_user_id: 1,
    floor_id: 1,
};

fn local_with_floor() -> LocalMedia {
    LocalMedia {
        floor: Some((40010, FLOOR)),
        ..local()
    }
}

/// A room system's offer or answer with content and BFCP: `floorctrl` and the IDs it gives,
/// the BFCP transport with its lines.
fn with_content(proto: &str, floor_lines: &str) -> String {
    let key = SdesKey::random().to_base64();
    baresip_answer("RTP/SAVP", "RTP/SAVP")
        + &format!(
            "m=video 10006 RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n\
             a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n\
             a=content:slides\r\na=label:12\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\na=sendrecv\r\n\
             m=application 5070 {proto} *\r\n{floor_lines}"
        )
}

#[test]
fn the_offer_carries_content_and_bfcp_when_the_room_has_a_floor_port() {
    let offer = make_offer(&local_with_floor());
    assert!(
        offer.sdp.contains("m=video 40004 RTP/SAVP 96 97\r\n"),
        "{}",
        offer.sdp
    );
    assert!(
        offer.sdp.contains("a=content:slides\r\na=label:3\r\n"),
        "{}",
        offer.sdp
    );
    assert!(
        offer.sdp.contains(
            "m=application 40010 UDP/BFCP *\r\na=floorctrl:c-s\r\na=confid:4321\r\n\
             a=userid:2\r\na=floorid:1 mstrm:3\r\n"
        ),
        "{}",
        offer.sdp
    );
    assert_ne!(offer.content_key, offer.video_key);
    // Without a floor port, no content either.
    let plain = make_offer(&local());
    assert!(!plain.sdp.contains("content:slides") && !plain.sdp.contains("BFCP"));
    // The room's own offer read back: the camera stays the main video, content apart.
    let back = parse_answer(&offer.sdp, true, None).unwrap();
    assert_eq!(back.video.unwrap().remote_rtp.port(), 40002);
    assert_eq!(
        back.content, None,
        "content without floor control is dropped"
    );
}

#[test]
fn an_answer_names_who_serves_the_floor() {
    // The far end serves: the room joins its conference with the IDs it gave.
    let server = with_content(
        "UDP/BFCP",
        "a=floorctrl:s-only\r\na=confid:77\r\na=userid:5\r\na=floorid:2 mstrm:12\r\n",
    );
    let agreed = parse_answer(&server, true, Some(&FLOOR)).unwrap();
    assert_eq!(agreed.content.as_ref().unwrap().remote_rtp.port(), 10006);
    assert_eq!(agreed.video.as_ref().unwrap().remote_rtp.port(), 10002);
    assert_eq!(
        agreed.floor,
        Some(AgreedFloor {
            transport: FloorTransport::Udp("10.77.1.2:5070".parse().unwrap()),
            role: FloorRole::Participant {
                conference_id: 77,
                user_id: 5,
                floor_id: 2
            },
        })
    );
    // A client only: the room serves, with the IDs of its offer.
    let client = with_content("UDP/BFCP", "a=floorctrl:c-only\r\n");
    let agreed = parse_answer(&client, true, Some(&FLOOR)).unwrap();
    assert_eq!(agreed.floor.unwrap().role, FloorRole::Server(FLOOR));
    // A server that gives no IDs, or an answer that cannot be (c-s): no content, call goes on.
    for floor_lines in ["a=floorctrl:s-only\r\n", "a=floorctrl:c-s\r\n"] {
        let agreed =
            parse_answer(&with_content("UDP/BFCP", floor_lines), true, Some(&FLOOR)).unwrap();
        assert_eq!(
            (agreed.content, agreed.floor),
            (None, None),
            "{floor_lines}"
        );
        assert!(agreed.audio.is_some() && agreed.video.is_some());
    }
    // The room offered UDP and listens on nothing: an answer that would connect to it answers
    // another offer.
    let connecting = with_content("TCP/BFCP", "a=setup:active\r\na=floorctrl:c-only\r\n");
    let agreed = parse_answer(&connecting, true, Some(&FLOOR)).unwrap();
    assert_eq!(agreed.floor, None);
}

#[test]
fn a_caller_offering_content_is_answered_with_the_floor_role_it_leaves_the_room() {
    let room = local_with_floor();
    // A room system offering c-s with its IDs runs the conference: the room is its client.
    let offer = with_content(
        "UDP/BFCP",
        "a=floorctrl:c-s\r\na=confid:9\r\na=userid:3\r\na=floorid:1 mstrm:12\r\n",
    );
    let offered = parse_offer(&offer, true, Some(&FLOOR)).unwrap();
    assert!(matches!(
        offered.agreed.floor.unwrap().role,
        FloorRole::Participant {
            conference_id: 9,
            user_id: 3,
            floor_id: 1
        }
    ));
    let answer = make_answer(&room, &offered).sdp;
    assert!(answer.contains("m=video 40004 RTP/SAVP 96\r\n"), "{answer}");
    assert!(answer.contains("a=content:slides\r\n"), "{answer}");
    assert!(
        answer.contains("m=application 40010 UDP/BFCP *\r\na=floorctrl:c-only\r\n"),
        "{answer}"
    );
    // A client-only caller (no a=floorctrl means c-only): the room serves, and says its IDs.
    let offered = parse_offer(&with_content("UDP/BFCP", ""), true, Some(&FLOOR)).unwrap();
    let answer = make_answer(&room, &offered).sdp;
    assert!(
        answer.contains(
            "a=floorctrl:s-only\r\na=confid:4321\r\na=userid:2\r\na=floorid:1 mstrm:3\r\n"
        ),
        "{answer}"
    );
    // BFCP over TCP: the room connects out when the caller listens.
    let tcp = with_content("TCP/BFCP", "a=setup:passive\r\na=connection:new\r\n");
    let offered = parse_offer(&tcp, true, Some(&FLOOR)).unwrap();
    assert_eq!(
        offered.agreed.floor.unwrap().transport,
        FloorTransport::TcpConnect("10.77.1.2:5070".parse().unwrap())
    );
    let answer = make_answer(&room, &offered).sdp;
    assert!(
        answer.contains("m=application 9 TCP/BFCP *\r\na=setup:active\r\n"),
        "{answer}"
    );
    // Over TLS too, to the certificate the caller's fingerprint names (media level here),
    // answering with the room's own BFCP certificate's.
    let fingerprint = ["12"; 32].join(":");
    let tls = with_content(
        "TCP/TLS/BFCP",
        &format!("a=setup:actpass\r\na=connection:new\r\na=fingerprint:sha-256 {fingerprint}\r\n"),
    );
    let offered = parse_offer(&tls, true, Some(&FLOOR)).unwrap();
    assert_eq!(
        offered.agreed.floor.unwrap().transport,
        FloorTransport::TlsConnect {
            remote: "10.77.1.2:5070".parse().unwrap(),
            fingerprint: [0x12; 32]
        }
    );
    let answer = make_answer(&room, &offered).sdp;
    assert!(
        answer.contains(&format!(
            "m=application 9 TCP/TLS/BFCP *\r\na=setup:active\r\na=connection:new\r\n\
             a=fingerprint:sha-256 {}\r\n",
            ["CD"; 32].join(":")
        )),
        "{answer}"
    );
    // A session-level fingerprint counts for the BFCP section as well.
    let session_level = tls
        .replace(&format!("a=fingerprint:sha-256 {fingerprint}\r\n"), "")
        .replacen(
            "t=0 0\r\n",
            &format!("t=0 0\r\na=fingerprint:sha-256 {fingerprint}\r\n"),
            1,
        );
    assert!(
        session_level.contains("t=0 0\r\na=fingerprint"),
        "{session_level}"
    );
    let offered = parse_offer(&session_level, true, Some(&FLOOR)).unwrap();
    assert!(matches!(
        offered.agreed.floor.unwrap().transport,
        FloorTransport::TlsConnect {
            fingerprint: [0x12, ..],
            ..
        }
    ));
    // A caller that connects (active, or no a=setup: RFC 4145's default) finds the room
    // listening on its BFCP port, over TCP or TLS.
    for lines in ["a=setup:active\r\na=connection:new\r\n", ""] {
        let offered = parse_offer(&with_content("TCP/BFCP", lines), true, Some(&FLOOR)).unwrap();
        assert_eq!(
            offered.agreed.floor.unwrap().transport,
            FloorTransport::TcpAccept("10.77.1.2".parse().unwrap())
        );
        let answer = make_answer(&room, &offered).sdp;
        assert!(
            answer.contains("m=application 40010 TCP/BFCP *\r\na=setup:passive\r\n"),
            "{answer}"
        );
    }
    let active_tls = with_content(
        "TCP/TLS/BFCP",
        &format!("a=setup:active\r\na=fingerprint:sha-256 {fingerprint}\r\n"),
    );
    let offered = parse_offer(&active_tls, true, Some(&FLOOR)).unwrap();
    assert_eq!(
        offered.agreed.floor.unwrap().transport,
        FloorTransport::TlsAccept {
            from: "10.77.1.2".parse().unwrap(),
            fingerprint: [0x12; 32]
        }
    );
    let answer = make_answer(&room, &offered).sdp;
    assert!(
        answer.contains(&format!(
            "m=application 40010 TCP/TLS/BFCP *\r\na=setup:passive\r\na=connection:new\r\n\
             a=fingerprint:sha-256 {}\r\n",
            ["CD"; 32].join(":")
        )),
        "{answer}"
    );
    // No TLS without a fingerprint to check the far end by, no connection held open
    // (holdconn), and no DTLS BFCP: content refused, the call goes on.
    for (proto, lines) in [
        ("TCP/TLS/BFCP", "a=setup:passive\r\n"),
        ("TCP/TLS/BFCP", "a=setup:active\r\n"),
        ("TCP/BFCP", "a=setup:holdconn\r\n"),
        ("UDP/TLS/BFCP", ""),
    ] {
        let offered = parse_offer(&with_content(proto, lines), true, Some(&FLOOR)).unwrap();
        assert_eq!(offered.agreed.floor, None, "{proto}");
        let answer = make_answer(&room, &offered).sdp;
        assert!(
            answer.contains(&format!("m=application 0 {proto} *\r\n")),
            "{proto}: {answer}"
        );
        assert!(
            answer.contains("m=video 0 RTP/SAVP 96\r\n"),
            "{proto}: {answer}"
        );
        assert!(
            answer.contains("m=video 40002 RTP/SAVP 96\r\n"),
            "{proto}: {answer}"
        );
    }
    // Without a floor port of its own, the room refuses content as well.
    let offered = parse_offer(&offer, true, None).unwrap();
    let answer = make_answer(&local(), &offered).sdp;
    assert!(!answer.contains("content:slides"), "{answer}");
}

#[test]
fn unencrypted_content_is_refused_alone() {
    let offer =
        with_content("UDP/BFCP", "").replace("m=video 10006 RTP/SAVP", "m=video 10006 RTP/AVP");
    let offered = parse_offer(&offer, true, Some(&FLOOR)).unwrap();
    assert!(offered.agreed.audio.is_some() && offered.agreed.video.is_some());
    assert_eq!((offered.agreed.content, offered.agreed.floor), (None, None));
}

#[test]
fn tmmbr_is_taken_for_the_camera_and_not_for_the_content() {
    // The room follows a far end's TMMBR on its camera's stream only: the content encoder is
    // not held, so its stream does not offer what the room would ignore.
    let section = |sdp: &str, from: &str| {
        let start = sdp.find(from).unwrap();
        let rest = &sdp[start + 1..];
        rest[..rest.find("\r\nm=").unwrap_or(rest.len())].to_owned()
    };
    let offer = make_offer(&local_with_floor()).sdp;
    assert!(
        section(&offer, "m=video 40002").contains("a=rtcp-fb:96 ccm tmmbr\r\n"),
        "{offer}"
    );
    assert!(
        section(&offer, "m=video 40002").contains("a=rtcp-fb:97 ccm tmmbr\r\n"),
        "{offer}"
    );
    assert!(
        !section(&offer, "m=video 40004").contains("tmmbr"),
        "{offer}"
    );
    let offered = parse_offer(&with_content("UDP/BFCP", ""), true, Some(&FLOOR)).unwrap();
    let answer = make_answer(&local_with_floor(), &offered).sdp;
    assert!(
        section(&answer, "m=video 40002").contains("ccm tmmbr\r\n"),
        "{answer}"
    );
    assert!(
        !section(&answer, "m=video 40004").contains("tmmbr"),
        "{answer}"
    );
}
