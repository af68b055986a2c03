//! The Nacos facade's unit tests: names, and instances kept as the client sent them.

use http::Request;

use super::instance::{Described, Host};
use super::names::NacosService;
use super::params::Params;

fn params(query: &str) -> Params {
    let request = Request::builder().uri(format!("/x?{query}")).body(()).unwrap();
    Params::of(&request).unwrap()
}

#[test]
fn names_map_to_registry_services() {
    let of = |q| NacosService::of(&params(q)).map(|s| (s.registry, s.grouped));
    assert_eq!(
        of("serviceName=demo").unwrap(),
        ("demo".into(), "DEFAULT_GROUP@@demo".into())
    );
    assert_eq!(
        of("serviceName=DEFAULT_GROUP%40%40demo&namespaceId=public").unwrap().0,
        "demo"
    );
    assert_eq!(of("serviceName=demo&namespaceId=").unwrap().0, "demo");
    assert_eq!(
        of("serviceName=demo&groupName=G").unwrap(),
        ("G::demo".into(), "G@@demo".into())
    );
    assert_eq!(of("serviceName=G%40%40demo&namespaceId=dev").unwrap().0, "dev/G::demo");
    assert!(of("groupName=G").is_err());
    assert!(of("serviceName=a%20b").is_err());
}

#[test]
fn an_instance_keeps_what_the_client_sent() {
    let p = params("ip=10.0.0.1&port=8080&weight=2.5&clusterName=None&enable=False&healthy=True&metadata=%7B%22a%22%3A+%22b%22%2C+%22n%22%3A+1%7D");
    let instance = Described::from_params(&p).unwrap().instance().unwrap();
    assert_eq!(instance.url(), "http://10.0.0.1:8080/");
    let service = NacosService::of(&params("serviceName=demo")).unwrap();
    let host = Host::of(instance, &service);
    assert_eq!(
        (host.weight, host.cluster_name.as_str(), host.enabled, host.healthy),
        (2.5, "None", false, true)
    );
    assert_eq!(host.metadata.get("a").map(String::as_str), Some("b"));
    assert_eq!(host.metadata.get("n").map(String::as_str), Some("1"));
    assert_eq!(host.metadata.len(), 2, "our parameters are not the client's metadata");
    assert_eq!(host.ip_delete_timeout, 30_000);
    for bad in [
        "ip=h&port=0",
        "ip=h&port=x",
        "ip=h&port=1&weight=-1",
        "ip=h&port=1&healthy=maybe",
        "ip=h&port=1&metadata=[1]",
        "port=1",
    ] {
        assert!(
            Described::from_params(&params(bad)).and_then(|d| d.instance()).is_err(),
            "{bad}"
        );
    }
}
