//! Nacos names on the registry (docs/spec.md §6.1): service `S` of the default namespace
//! and group is registry service `S`, group `G` is `G::S`, namespace `N` is `N/G::S`.

use registry_core::validate_service_name;

use crate::error::FacadeError;

use super::params::Params;

/// The group a service is in when none is named.
pub(crate) const DEFAULT_GROUP: &str = "DEFAULT_GROUP";

/// A Nacos service: namespace, group, name, and the registry service it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NacosService {
    pub(crate) group: String,
    pub(crate) name: String,
    /// `group@@name`, as Nacos clients key it.
    pub(crate) grouped: String,
    /// The registry service.
    pub(crate) registry: String,
}

impl NacosService {
    /// From `namespaceId`, `serviceName` (plain or `group@@name`) and `groupName`.
    pub(crate) fn of(params: &Params) -> Result<NacosService, FacadeError> {
        let service = params.required("serviceName")?;
        let (group, name) = match service.split_once("@@") {
            Some((group, name)) => (group, name),
            None => (params.get("groupName").unwrap_or(DEFAULT_GROUP), service),
        };
        let namespace = params.get("namespaceId").filter(|n| *n != "public");
        NacosService::named(namespace, group, name)
    }

    pub(crate) fn named(namespace: Option<&str>, group: &str, name: &str) -> Result<NacosService, FacadeError> {
        if name.is_empty() || group.is_empty() {
            return Err(FacadeError::bad("Param 'serviceName' is required."));
        }
        let registry = match (namespace, group) {
            (None, DEFAULT_GROUP) => name.to_owned(),
            (None, group) => format!("{group}::{name}"),
            (Some(namespace), group) => format!("{namespace}/{group}::{name}"),
        };
        validate_service_name(&registry).map_err(|e| FacadeError::bad(e.to_string()))?;
        Ok(NacosService {
            group: group.to_owned(),
            name: name.to_owned(),
            grouped: format!("{group}@@{name}"),
            registry,
        })
    }
}
