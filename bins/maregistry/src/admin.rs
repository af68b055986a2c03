//! The first admin (docs/spec.md §9.1): with `--auth-enabled` and `--admin-password-file`,
//! the user `--admin-user` is made and bound to the admin role when it is missing, through
//! the gateway like any write (a follower relays it; several nodes making it at once make
//! it once). Without a password file, a node whose state holds no admin stops with status
//! 2 and says how to make one.

use std::sync::Arc;
use std::time::Duration;

use registry_api::access::hash_password;
use registry_api::{App, Op, Origin};
use registry_cluster::Role;
use registry_core::{IdentityChange, ADMIN_ROLE};
use tokio::sync::oneshot;

use crate::config::Admin;

/// How long a node without a password file waits for its state (its log replayed, or sent
/// by the leader) to show an admin, counted from when it first knows a leader: until then
/// its state may not be replayed yet (a raft node applies its log once a leader confirms
/// what is committed), and a slow election must not make it give up.
const WAIT_FOR_ADMIN: Duration = Duration::from_secs(10);

/// Why a node stopped: auth is on and there is no admin to log in as.
#[derive(Debug)]
pub struct NoAdmin(pub String);

impl std::fmt::Display for NoAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--auth-enabled and no admin: no user holds {ADMIN_ROLE}. Create one by starting this node with \
             --admin-password-file <file holding the password of --admin-user {:?}>",
            self.0
        )
    }
}

impl std::error::Error for NoAdmin {}

/// Makes the first admin when missing, retrying until a leader takes it; or, without a
/// password, sends on `no_admin` when none appears in time.
pub(crate) async fn ensure(app: Arc<App>, admin: Admin, no_admin: oneshot::Sender<NoAdmin>) {
    let Some(password) = admin.password else {
        let mut deadline = None;
        while !has_admin(&app) {
            let now = tokio::time::Instant::now();
            if app.cluster().role() != Role::NoLeader {
                deadline.get_or_insert(now + WAIT_FOR_ADMIN);
            }
            if deadline.is_some_and(|deadline| now >= deadline) {
                let _ = no_admin.send(NoAdmin(admin.user));
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        return;
    };
    let hash = match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(e)) => return tracing::error!(error = %e, "the admin's password could not be hashed"),
        Err(e) => return tracing::error!(error = %e, "hashing the admin's password failed"),
    };
    let user = admin.user;
    loop {
        let (exists, bound) = {
            let state = app.registry().identities().read();
            (state.users.contains_key(&user), state.is_admin(&user))
        };
        if exists && bound {
            return;
        }
        let mut ops = Vec::with_capacity(2);
        if !exists {
            ops.push(Op::Identity(Box::new(IdentityChange::CreateUser {
                username: user.clone(),
                password_hash: hash.clone(),
            })));
        }
        ops.push(Op::Identity(Box::new(IdentityChange::BindRole {
            role: ADMIN_ROLE.to_owned(),
            username: user.clone(),
        })));
        match app.write(&Origin::node(&app), ops).await {
            Ok(_) => tracing::info!(user, "made the first admin"),
            Err(e) => {
                tracing::debug!(error = %e, "the first admin is not made yet; trying again");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

fn has_admin(app: &App) -> bool {
    app.registry().identities().read().has_admin()
}
