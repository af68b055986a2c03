//! One module per endpoint family.

pub(crate) mod cluster;
pub(crate) mod discovery;
pub(crate) mod eureka;
pub(crate) mod nacos;
pub(crate) mod operations;
pub(crate) mod registration;
pub(crate) mod snapshot;
