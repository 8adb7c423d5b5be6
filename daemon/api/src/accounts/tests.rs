//! Tests of the [`Accounts`] facade: the flows the API relies on, end to end over real files.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;

const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const OTHER_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
const PASSWORD: &str = "correct horse battery";

fn policy() -> AccountsPolicy {
    AccountsPolicy {
        lockout_threshold: 5,
        lockout_max: Duration::from_secs(60),
        session_idle: Duration::from_secs(600),
    }
}

fn open(dir: &Path) -> (Arc<ManualClock>, Accounts) {
    let clock = Arc::new(ManualClock::new());
    let accounts = Accounts::open_with_clock(dir, policy(), clock.clone()).unwrap();
    (clock, accounts)
}

/// An opened device claimed by admin "root".
fn claimed(dir: &Path) -> (Arc<ManualClock>, Accounts) {
    let (clock, accounts) = open(dir);
    let code = accounts.claim_code().unwrap();
    accounts
        .claim(code.expose(), "root", PASSWORD, SOURCE)
        .unwrap();
    (clock, accounts)
}

#[test]
fn shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Accounts>();
    assert_send_sync::<crate::audit::AuditLog>();
}

#[test]
fn claim_works_once_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, accounts) = open(dir.path());
    assert!(!accounts.is_claimed());
    let code = accounts.claim_code().unwrap();
    let code_file = dir.path().join(CLAIM_CODE_FILE);
    let mode = std::fs::metadata(&code_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        std::fs::read_to_string(&code_file).unwrap().trim(),
        code.expose()
    );
    assert!(matches!(
        accounts.login("root", PASSWORD, SOURCE),
        Err(AccountsError::NotClaimed)
    ));

    // Typed the way people type codes read off a screen.
    let typed = format!(
        "{}-{} {}",
        &code.expose()[..4],
        &code.expose()[4..8],
        code.expose()[8..].to_lowercase()
    );
    let admin = accounts.claim(&typed, "root", PASSWORD, SOURCE).unwrap();
    assert_eq!(admin.username, "root");
    assert_eq!(admin.role, Role::Admin);
    assert!(accounts.is_claimed());
    assert!(accounts.claim_code().is_none());
    assert!(!code_file.exists(), "claim code file deleted");

    assert!(matches!(
        accounts.claim(code.expose(), "mallory", PASSWORD, OTHER_SOURCE),
        Err(AccountsError::AlreadyClaimed)
    ));
    assert_eq!(accounts.list_users().len(), 1);

    let reopened = Accounts::open(dir.path(), policy()).unwrap();
    assert!(reopened.is_claimed());
    assert!(!code_file.exists());
    assert!(reopened.login("root", PASSWORD, SOURCE).is_ok());
}

#[test]
fn concurrent_claims_create_exactly_one_admin() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, accounts) = open(dir.path());
    let accounts = Arc::new(accounts);
    let code = accounts.claim_code().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let accounts = accounts.clone();
            let code = code.clone();
            std::thread::spawn(move || {
                accounts.claim(code.expose(), &format!("admin{i}"), PASSWORD, SOURCE)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, AccountsError::AlreadyClaimed))
    );
    assert_eq!(accounts.list_users().len(), 1);
}

#[test]
fn restart_while_unclaimed_keeps_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).1.claim_code().unwrap();
    let (_clock, accounts) = open(dir.path());
    assert_eq!(accounts.claim_code().unwrap().expose(), first.expose());
}

#[test]
fn wrong_claim_codes_are_refused_and_rate_limited_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, accounts) = open(dir.path());
    let code = accounts.claim_code().unwrap();
    for _ in 0..5 {
        assert!(matches!(
            accounts.claim("AAAAAAAAAAAA", "root", PASSWORD, SOURCE),
            Err(AccountsError::WrongClaimCode)
        ));
    }
    let locked = accounts.claim(code.expose(), "root", PASSWORD, SOURCE);
    assert!(
        matches!(locked, Err(AccountsError::LockedOut { retry_after }) if retry_after == Duration::from_secs(1)),
        "even the right code waits: {locked:?}"
    );
    assert!(!accounts.is_claimed());
    // Invalid input is answered without counting as a guess.
    assert!(matches!(
        accounts.claim(code.expose(), "root", "short", SOURCE),
        Err(AccountsError::WeakPassword { .. })
    ));
    clock.advance(Duration::from_secs(1));
    assert!(
        accounts
            .claim(code.expose(), "root", PASSWORD, SOURCE)
            .is_ok()
    );
}

#[test]
fn claim_validates_username_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, accounts) = open(dir.path());
    let code = accounts.claim_code().unwrap();
    assert!(matches!(
        accounts.claim(code.expose(), "Root", PASSWORD, SOURCE),
        Err(AccountsError::InvalidUsername { .. })
    ));
    assert!(matches!(
        accounts.claim(code.expose(), "rootrootroot", "rootrootroot", SOURCE),
        Err(AccountsError::WeakPassword { .. })
    ));
    assert!(!accounts.is_claimed());
}

#[test]
fn login_lockout_grows_and_success_resets() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, accounts) = claimed(dir.path());
    let wrong = |source| accounts.login("root", "wrong password!!", source);
    for _ in 0..5 {
        assert!(matches!(wrong(SOURCE), Err(AccountsError::BadCredentials)));
    }
    let retry = |result: Result<NewSession, AccountsError>| match result {
        Err(AccountsError::LockedOut { retry_after }) => retry_after,
        other => panic!("expected a lockout, got {other:?}"),
    };
    assert_eq!(
        retry(accounts.login("root", PASSWORD, SOURCE)),
        Duration::from_secs(1),
        "refused before the password is checked"
    );
    assert!(
        accounts.login("root", PASSWORD, OTHER_SOURCE).is_ok(),
        "other sources are not affected"
    );

    clock.advance(Duration::from_secs(1));
    assert!(matches!(wrong(SOURCE), Err(AccountsError::BadCredentials)));
    assert_eq!(retry(wrong(SOURCE)), Duration::from_secs(2));
    clock.advance(Duration::from_secs(2));
    assert!(matches!(wrong(SOURCE), Err(AccountsError::BadCredentials)));
    assert_eq!(retry(wrong(SOURCE)), Duration::from_secs(4));

    clock.advance(Duration::from_secs(4));
    assert!(accounts.login("root", PASSWORD, SOURCE).is_ok());
    for _ in 0..5 {
        assert!(matches!(wrong(SOURCE), Err(AccountsError::BadCredentials)));
    }
    assert_eq!(
        retry(wrong(SOURCE)),
        Duration::from_secs(1),
        "count was reset"
    );
}

#[test]
fn policy_changes_apply_at_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, accounts) = claimed(dir.path());
    accounts.set_policy(AccountsPolicy {
        lockout_threshold: 2,
        lockout_max: Duration::from_secs(60),
        session_idle: Duration::from_secs(30),
    });
    assert_eq!(accounts.policy().lockout_threshold, 2);
    let session = accounts.login("root", PASSWORD, SOURCE).unwrap();
    assert_eq!(session.idle_timeout, Duration::from_secs(30));
    clock.advance(Duration::from_secs(30));
    assert!(accounts.session(session.cookie.expose()).is_none());
    for _ in 0..2 {
        assert!(accounts.login("root", "wrong password!!", SOURCE).is_err());
    }
    assert!(matches!(
        accounts.login("root", PASSWORD, SOURCE),
        Err(AccountsError::LockedOut { .. })
    ));
}

#[test]
fn unknown_users_and_wrong_passwords_look_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, accounts) = claimed(dir.path());
    let unknown = accounts.login("nobody", PASSWORD, SOURCE).unwrap_err();
    let wrong = accounts
        .login("root", "wrong password!!", SOURCE)
        .unwrap_err();
    assert!(matches!(unknown, AccountsError::BadCredentials));
    assert_eq!(unknown.to_string(), wrong.to_string());
    assert!(matches!(
        accounts.login("root", &"x".repeat(5000), SOURCE),
        Err(AccountsError::BadCredentials)
    ));
}

#[test]
fn sessions_carry_role_csrf_and_expire_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, accounts) = claimed(dir.path());
    accounts
        .create_user("viewer", PASSWORD, Role::Audit)
        .unwrap();
    let new = accounts.login("viewer", PASSWORD, SOURCE).unwrap();
    assert_eq!(new.principal.role, Role::Audit);
    assert_eq!(new.principal.kind, PrincipalKind::Session);
    assert_eq!(new.idle_timeout, Duration::from_secs(600));

    let session = accounts.session(new.cookie.expose()).unwrap();
    assert_eq!(session.principal.name, "viewer");
    assert!(session.csrf_matches(new.csrf_token.expose()));
    assert!(!session.csrf_matches("forged"));

    clock.advance(Duration::from_secs(599));
    assert!(
        accounts.session(new.cookie.expose()).is_some(),
        "use refreshes"
    );
    clock.advance(Duration::from_secs(599));
    assert!(accounts.session(new.cookie.expose()).is_some());
    clock.advance(Duration::from_secs(600));
    assert!(
        accounts.session(new.cookie.expose()).is_none(),
        "idle too long"
    );

    let again = accounts.login("viewer", PASSWORD, SOURCE).unwrap();
    accounts.logout(again.cookie.expose());
    assert!(accounts.session(again.cookie.expose()).is_none());
}

#[test]
fn user_management() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, accounts) = claimed(dir.path());
    assert!(matches!(
        accounts.create_user("root", PASSWORD, Role::User),
        Err(AccountsError::UserExists { .. })
    ));
    assert!(matches!(
        accounts.create_user("bad name", PASSWORD, Role::User),
        Err(AccountsError::InvalidUsername { .. })
    ));
    assert!(matches!(
        accounts.create_user("panel", "short", Role::User),
        Err(AccountsError::WeakPassword { .. })
    ));
    accounts
        .create_user("panel", PASSWORD, Role::RoomControl)
        .unwrap();
    assert_eq!(accounts.user_role("panel"), Some(Role::RoomControl));
    let listed = serde_json::to_string(&accounts.list_users()).unwrap();
    assert!(
        listed.contains("\"panel\"") && !listed.contains("argon2"),
        "{listed}"
    );

    let session = accounts.login("panel", PASSWORD, SOURCE).unwrap();
    accounts
        .set_password("panel", "a brand new password")
        .unwrap();
    assert!(
        accounts.session(session.cookie.expose()).is_none(),
        "password change ends sessions"
    );
    assert!(accounts.login("panel", PASSWORD, SOURCE).is_err());
    assert!(
        accounts
            .login("panel", "a brand new password", SOURCE)
            .is_ok()
    );
    assert!(matches!(
        accounts.set_password("ghost", PASSWORD),
        Err(AccountsError::UserNotFound { .. })
    ));

    assert!(matches!(
        accounts.delete_user("root"),
        Err(AccountsError::LastAdmin { .. })
    ));
    let session = accounts
        .login("panel", "a brand new password", SOURCE)
        .unwrap();
    accounts.delete_user("panel").unwrap();
    assert!(accounts.session(session.cookie.expose()).is_none());
    assert_eq!(accounts.user_role("panel"), None);

    accounts
        .create_user("second", PASSWORD, Role::Admin)
        .unwrap();
    accounts.delete_user("root").unwrap();
    let reopened = Accounts::open(dir.path(), policy()).unwrap();
    let names: Vec<_> = reopened
        .list_users()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["second"]);
}

#[test]
fn users_file_is_private_and_holds_only_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, _accounts) = claimed(dir.path());
    let path = dir.path().join(USERS_FILE);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains("$argon2id$"), "{text}");
}

#[test]
fn corrupt_users_file_is_an_error_naming_it_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(USERS_FILE);
    std::fs::write(&path, "{\"version\":1,\"users\":[{\"username\":").unwrap();
    let err = Accounts::open(dir.path(), policy()).unwrap_err();
    assert!(matches!(err, AccountsError::Corrupt { .. }));
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"version\":1,\"users\":[{\"username\":"
    );
    assert!(!dir.path().join(CLAIM_CODE_FILE).exists());
}

#[test]
fn tokens_verify_revoke_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, accounts) = claimed(dir.path());
    let (info, secret) = accounts
        .create_token("crestron", Role::RoomControl, "root")
        .unwrap();
    assert_eq!(info.created_by, "root");
    let principal = accounts.verify_token(secret.expose()).unwrap();
    assert_eq!(principal.role, Role::RoomControl);
    assert_eq!(principal.audit_name(), format!("token:{}", info.id));
    assert!(accounts.verify_token("rmd_guess").is_none());

    let file = std::fs::read_to_string(dir.path().join(TOKENS_FILE)).unwrap();
    assert!(!file.contains(secret.expose()), "{file}");
    assert!(
        !file.contains(&secret.expose()[TOKEN_PREFIX.len()..]),
        "{file}"
    );

    let reopened = Accounts::open(dir.path(), policy()).unwrap();
    assert_eq!(reopened.list_tokens(), std::slice::from_ref(&info));
    assert!(reopened.verify_token(secret.expose()).is_some());
    reopened.revoke_token(&info.id).unwrap();
    assert!(reopened.verify_token(secret.expose()).is_none());
    assert!(matches!(
        reopened.revoke_token(&info.id),
        Err(AccountsError::TokenNotFound { .. })
    ));
    let reopened = Accounts::open(dir.path(), policy()).unwrap();
    assert!(reopened.verify_token(secret.expose()).is_none());
    assert!(reopened.list_tokens().is_empty());
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, accounts) = open(dir.path());
    let code = accounts.claim_code().unwrap();
    accounts
        .claim(code.expose(), "root", PASSWORD, SOURCE)
        .unwrap();
    let session = accounts.login("root", PASSWORD, SOURCE).unwrap();
    let (_, token) = accounts.create_token("t", Role::User, "root").unwrap();
    let debug = format!("{accounts:?} {session:?} {token:?}");
    for secret in [
        session.cookie.expose(),
        session.csrf_token.expose(),
        token.expose(),
        code.expose(),
        PASSWORD,
        "$argon2id$",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked into {debug}");
    }
}

#[test]
fn logins_from_one_ipv6_64_count_as_one_source_across_usernames() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, accounts) = claimed(dir.path());
    // 4 × threshold (5) failures, each from another address of one /64 and for another name.
    for n in 0..20u16 {
        let source: IpAddr = format!("2001:db8:7:7::{:x}", n + 1).parse().unwrap();
        assert!(matches!(
            accounts.login(&format!("name{n}"), "wrong password!", source),
            Err(AccountsError::BadCredentials)
        ));
    }
    let same_64: IpAddr = "2001:db8:7:7:ffff::1".parse().unwrap();
    assert!(matches!(
        accounts.login("root", PASSWORD, same_64),
        Err(AccountsError::LockedOut { .. })
    ));
    let next_64: IpAddr = "2001:db8:7:8::1".parse().unwrap();
    assert!(accounts.login("root", PASSWORD, next_64).is_ok());
}

#[test]
fn busy_password_checks_answer_at_once_and_do_not_count_as_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, accounts) = claimed(dir.path());
    // Take every slot the device has (one per core, at most 4).
    let mut held = Vec::new();
    loop {
        let attempt = accounts.begin_login("root", OTHER_SOURCE).unwrap();
        match accounts.password_check_permit(&attempt) {
            Ok(permit) => held.push((attempt, permit)),
            Err(AccountsError::Busy { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(1));
                break;
            }
            Err(other) => panic!("{other:?}"),
        }
        assert!(held.len() <= 4, "more than 4 checks at once");
    }
    // Many busy answers lock nobody out: they were never checked.
    for _ in 0..20 {
        let attempt = accounts.begin_login("root", SOURCE).unwrap();
        assert!(matches!(
            accounts.password_check_permit(&attempt),
            Err(AccountsError::Busy { .. })
        ));
    }
    for (attempt, permit) in held {
        assert!(accounts.finish_login(attempt, PASSWORD, permit).is_ok());
    }
    assert!(accounts.login("root", PASSWORD, SOURCE).is_ok());
}

#[test]
fn an_overlong_username_is_nobody_even_if_it_starts_with_a_real_one() {
    let dir = tempfile::tempdir().unwrap();
    let (_clock, accounts) = claimed(dir.path());
    let padded = format!("root{}", " ".repeat(MAX_USERNAME_LEN + 10));
    assert!(matches!(
        accounts.login(&padded, PASSWORD, SOURCE),
        Err(AccountsError::BadCredentials)
    ));
    let long_real = "r".repeat(MAX_USERNAME_LEN);
    accounts
        .create_user(&long_real, PASSWORD, Role::User)
        .unwrap();
    assert!(accounts.login(&long_real, PASSWORD, SOURCE).is_ok());
    assert!(matches!(
        accounts.login(&format!("{long_real}x"), PASSWORD, SOURCE),
        Err(AccountsError::BadCredentials)
    ));
}
