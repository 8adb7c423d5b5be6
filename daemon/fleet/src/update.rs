//! The fleet request `{"update": {"url": "https://…"}}`: the room downloads the bundle and installs
//! it exactly as `POST /api/v1/update` with `{"url": …}` does ([`roomd_api::download_bundle`]:
//! the same outbound policy, trust, size cap and checks), and the reply waits until RAUC has
//! installed it or it was refused. That can take minutes, so it runs in a task of its own: the
//! command task goes on taking requests meanwhile, and a second update is refused by the update
//! worker's own busy check (409), as on the API.

use std::sync::Arc;
use std::time::Duration;

use roomd_api::{ApiError, BundleUrl};
use roomd_model::config::Config;
use roomd_model::update::{UpdateState, UpdateStatus};
use roomd_update::{UpdateError, UpdateHandle};
use serde::Deserialize;

/// The longest an install may take before the reply gives up waiting (the install itself goes
/// on; `status.update` tells how it ended). RAUC writes a 1 GiB slot in a few minutes on the
/// slowest supported boxes.
const INSTALL_WAIT: Duration = Duration::from_secs(30 * 60);

/// `"update": {…}` of a fleet request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateRequest {
    pub(crate) url: String,
}

/// What the audit log says of an update request before it ran (the URL without secrets).
pub(crate) fn audit_detail(url: &BundleUrl) -> String {
    format!("update download from {}", url.shown())
}

/// Downloads, verifies and installs; returns `status.update` once the install ended well.
pub(crate) async fn install(
    updates: UpdateHandle,
    config: Arc<Config>,
    url: BundleUrl,
) -> Result<UpdateStatus, ApiError> {
    // Subscribed before anything starts, so that the end of the install cannot be missed.
    let mut watch = updates.watch();
    let staging = roomd_api::download_bundle(&updates, &config, url).await?;
    // Returns once RAUC started (every refusal comes from here); the install ends later.
    staging.finish().await?;
    let ended = tokio::time::timeout(INSTALL_WAIT, async {
        loop {
            let status = watch.borrow_and_update().clone();
            if status.state != UpdateState::Installing {
                return Some(status);
            }
            if watch.changed().await.is_err() {
                return None;
            }
        }
    })
    .await;
    match ended {
        Ok(Some(status)) if status.state == UpdateState::Installed => Ok(status),
        Ok(Some(status)) if status.state == UpdateState::Failed => Err(ApiError::from(
            UpdateError::Service(format!("RAUC did not install the bundle: {}", status.error)),
        )),
        // Idle or downloading again: not what an install ends in.
        Ok(Some(status)) => Err(ApiError::Internal(format!(
            "the install ended in the state {}",
            status.state.as_str()
        ))),
        Ok(None) => Err(ApiError::Unavailable(
            "the update worker stopped while the bundle was being installed".into(),
        )),
        Err(_) => Err(ApiError::Unavailable(format!(
            "the install did not end within {} minutes; status.update tells how it goes on",
            INSTALL_WAIT.as_secs() / 60
        ))),
    }
}
