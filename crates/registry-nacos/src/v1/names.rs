//! Nacos names on the registry (docs/spec.md §6.1): service `S` of the default namespace
//! and group is registry service `S`, group `G` is `G::S`, namespace `N` is `N/G::S`.

use registry_core::{validate_service_name, Kind, Registry, Resource, DEFAULT_NAMESPACE};

use registry_api::FacadeError;

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

/// The resource a naming request touches (docs/spec.md §9): its namespace (`public` when
/// none), the group in `serviceName` (`G@@S`) or `groupName` (`DEFAULT_GROUP` when none),
/// and the service (`*`, every one of the group, when none is named).
pub(crate) fn naming_resource<'a>(
    namespace: Option<&'a str>,
    service_name: Option<&'a str>,
    group_name: Option<&'a str>,
) -> Resource<'a> {
    let service = service_name.unwrap_or("*");
    let (group, name) = match service.split_once("@@") {
        Some((group, name)) => (group, name),
        None => (group_name.unwrap_or(DEFAULT_GROUP), service),
    };
    Resource {
        namespace: namespace.unwrap_or(DEFAULT_NAMESPACE),
        group,
        kind: Kind::Naming,
        name,
    }
}

/// The services with instances in `namespace` (`None`: the default one) and `group`, by
/// their Nacos names, sorted: how many there are, and page `page_no` (from 1) of
/// `page_size` of them.
pub(crate) fn service_page(
    registry: &Registry,
    namespace: Option<&str>,
    group: &str,
    page_no: usize,
    page_size: usize,
) -> (usize, Vec<String>) {
    let (_, all) = registry.services();
    let names: Vec<String> = all
        .into_iter()
        .filter(|s| s.instances > 0)
        .filter_map(|s| match (namespace, group) {
            (None, DEFAULT_GROUP) => (!s.name.contains("::")).then_some(s.name),
            (None, g) => s.name.strip_prefix(&format!("{g}::")).map(str::to_owned),
            (Some(n), g) => s.name.strip_prefix(&format!("{n}/{g}::")).map(str::to_owned),
        })
        .collect();
    let count = names.len();
    let page = names
        .into_iter()
        .skip(page_no.max(1).saturating_sub(1).saturating_mul(page_size))
        .take(page_size)
        .collect();
    (count, page)
}
