//! The handlers of the seed's API and the operators' endpoints, one file per family:
//! `registration` (`/reg`, `/unreg`, `/renew`, `/renews`, `/batch`), `discovery`
//! (`/findAll`, `/version`, `/versions`), `snapshot` (`/snapshot`), `cluster` (`/info`,
//! `/cluster`, `/leader`, `/sl`), `operations` (`/metrics`, `/health`, `/ready`, `/ui`,
//! `/services`, `/instances`) and `mode` (the running cluster mode's own endpoints).

pub(crate) mod cluster;
pub(crate) mod discovery;
pub(crate) mod mode;
pub(crate) mod operations;
pub(crate) mod registration;
pub(crate) mod snapshot;
