use super::*;

fn parse(body: &str) -> Result<Registration, Refusal> {
    Registration::parse(body.as_bytes(), "10.0.0.9".parse().ok(), 1_000)
}

#[test]
fn py_consul_lower_case_and_npm_pascal_case_read_alike() {
    let py = parse(
        r#"{"name":"web","id":"web-1","address":"10.0.0.7","port":8080,"tags":["v1"],"meta":{"version":"1"},
        "checks":[{"ttl":"10s","DeregisterCriticalServiceAfter":"1m"}]}"#,
    )
    .unwrap();
    let npm = parse(
        r#"{"Name":"web","ID":"web-1","Address":"10.0.0.7","Port":8080,"Tags":["v1"],"Meta":{"version":"1"},
        "Check":{"TTL":"10s","DeregisterCriticalServiceAfter":"1m"}}"#,
    )
    .unwrap();
    assert_eq!(py, npm);
    assert_eq!(py.checks.len(), 1);
    let check = &py.checks[0];
    assert_eq!(check.id, "service:web-1");
    assert_eq!(check.status, CRITICAL, "a new check starts critical");
    assert_eq!((check.ttl_ms, check.dcsa_ms), (10_000, 60_000));
    assert_eq!(check.name, "Service 'web' check");
}

#[test]
fn defaults_ids_and_several_checks_number_from_one() {
    let r = parse(r#"{"Name":"api","Port":9,"Check":{"TTL":"5s"},"Checks":[{"TCP":"10.0.0.9:9","Interval":"1s"}]}"#)
        .unwrap();
    assert_eq!(r.id, "api");
    assert_eq!(r.address, "10.0.0.9", "no address: the registering client's");
    let ids: Vec<&str> = r.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["service:api:1", "service:api:2"]);
    assert_eq!(r.checks[1].timeout_ms, 10_000);
}

#[test]
fn consul_refusals_say_what_consul_says() {
    assert_eq!(parse(r#"{"Port":1}"#).unwrap_err(), "Missing service name");
    assert_eq!(
        parse(r#"{"Name":"a","Address":"0.0.0.0","Port":1}"#).unwrap_err(),
        "Invalid service address"
    );
    assert!(parse(r#"{"Name":"a","Port":70000}"#)
        .unwrap_err()
        .starts_with("Invalid service port"));
    assert!(parse(r#"{"Name":"a","Port":1,"Check":{"TTL":"ten"}}"#)
        .unwrap_err()
        .contains("invalid duration"));
    assert_eq!(
        parse(r#"{"Name":"a","Port":1,"Check":{"TTL":"1s","Status":"up"}}"#).unwrap_err(),
        "Status for checks must 'passing', 'warning', 'critical'"
    );
    assert!(parse(r#"{"Name":"a","Port":1,"Meta":{"consul-x":"1"}}"#)
        .unwrap_err()
        .starts_with("Invalid Service Meta"));
    assert!(parse(r#"{"Name":"a","Port":1,"Meta":{"a.b":"1"}}"#)
        .unwrap_err()
        .starts_with("Invalid Service Meta"));
    assert!(parse(r#"{"Name":"a","Port":1,"Check":{"HTTP":"http://10.0.0.9:1/"}}"#)
        .unwrap_err()
        .contains("Interval"));
    assert!(parse(r#"[]"#).unwrap_err().starts_with("Request decode failed"));
    assert!(parse(r#"{"Name":"a","Port":1,"Kind":"connect-proxy"}"#).is_err());
}

#[test]
fn the_body_is_read_as_consuls_go_decoder_reads_it() {
    // Any case, underscores, unknown keys (nested too) skipped, a later key of one field
    // winning, a null leaving the field as it was.
    let r = parse(
        r#"{"NAME":"web","Weights":{"Passing":1,"x":[1,{"y":null}]},"i_d":"one","Id":"two","ID":null,
        "Port":1,"port":2,"EnableTagOverride":true,"TAGS":["a","b"],"meta":{"k":"v","k":"w"}}"#,
    )
    .unwrap();
    assert_eq!((r.name.as_str(), r.id.as_str(), r.port), ("web", "two", 2));
    assert_eq!(r.tags, ["a", "b"]);
    assert_eq!(r.meta, BTreeMap::from([("k".to_owned(), "w".to_owned())]));
    // A field of another JSON type is refused, naming the field and the type sent.
    let refusal = |body: &str| parse(body).unwrap_err();
    for (body, refused) in [
        (
            r#"{"Name":7,"Port":1}"#,
            "Request decode failed: Name must be a string, got a number",
        ),
        (
            r#"{"Name":"a","Port":1,"ID":["x"]}"#,
            "Request decode failed: ID must be a string, got an array",
        ),
        (
            r#"{"Name":"a","Port":1,"Tags":"x"}"#,
            "Request decode failed: Tags must be an array, got a string",
        ),
        (
            r#"{"Name":"a","Port":1,"Tags":["x",{}]}"#,
            "Request decode failed: Tags must hold strings, got an object",
        ),
        (
            r#"{"Name":"a","Port":1,"Meta":{"k":true}}"#,
            "Invalid Service Meta: the value of \"k\" must be a string",
        ),
        (
            r#"{"Name":"a","Port":1,"Meta":[]}"#,
            "Invalid Service Meta: must be an object, got an array",
        ),
        (
            r#"{"Name":"a","Port":"1"}"#,
            "Invalid service port: \"1\" (from 1 to 65535)",
        ),
        ("null", "Request decode failed: the body must be an object, got null"),
        (
            r#""x""#,
            "Request decode failed: the body must be an object, got a string",
        ),
    ] {
        assert_eq!(refusal(body), refused, "{body}");
    }
    assert!(refusal(r#"{"Name":"a","Port":1} x"#).starts_with("Request decode failed: trailing characters"));
    assert!(refusal(r#"{"Name":"a","Port":1"#).starts_with("Request decode failed: EOF"));
}

#[test]
fn a_check_probes_only_the_services_own_address() {
    let other = parse(
        r#"{"Name":"a","Address":"10.0.0.7","Port":1,"Check":{"HTTP":"http://169.254.169.254/x","Interval":"1s"}}"#,
    );
    assert!(other.unwrap_err().contains("must be the service's address"));
    let tcp = parse(r#"{"Name":"a","Address":"10.0.0.7","Port":1,"Check":{"TCP":"127.0.0.1:22","Interval":"1s"}}"#);
    assert!(tcp.is_err());
    let own = parse(
        r#"{"Name":"a","Address":"10.0.0.7","Port":1,"Check":{"HTTP":"http://10.0.0.7:1/health","Interval":"1s"}}"#,
    );
    assert!(own.is_ok());
}

#[test]
fn an_instance_carries_the_registration_and_reads_back_as_it() {
    let r = parse(
        r#"{"Name":"web","ID":"web-1","Address":"10.0.0.7","Port":8080,"Tags":["b","a"],"Meta":{"secure":"true"},
        "Check":{"TTL":"10s"}}"#,
    )
    .unwrap();
    let instance = r.instance().unwrap();
    assert_eq!(instance.scheme, "https");
    assert_eq!(
        instance.parameters.get("nacos.healthy").map(String::as_str),
        Some("false")
    );
    let entry = Entry::of("web", instance);
    assert!(entry.native);
    assert_eq!(entry.id, "web-1");
    assert_eq!(entry.tags, ["b", "a"]);
    assert_eq!(entry.meta.keys().collect::<Vec<_>>(), ["secure"]);
    assert_eq!(entry.status(), CRITICAL);
}

#[test]
fn re_registering_keeps_a_checks_status() {
    let body = r#"{"Name":"web","Port":1,"Check":{"TTL":"10s"}}"#;
    let mut passing = parse(body).unwrap().checks;
    passing[0].status = PASSING.to_owned();
    let mut again = parse(body).unwrap().checks;
    assert_eq!(again[0].status, CRITICAL);
    keep_states(&mut again, &passing);
    assert_eq!(again[0].status, PASSING);
}

#[test]
fn an_instance_of_another_protocol_has_one_passing_check() {
    let mut instance = InstanceMeta::new("http", "10.0.0.1", 80, "").unwrap();
    instance.parameters.insert("nacos.weight".into(), "1".into());
    instance.parameters.insert("zone".into(), "a".into());
    let entry = Entry::of("orders", instance);
    assert!(!entry.native);
    assert_eq!(entry.id, "10.0.0.1:80");
    assert_eq!(entry.status(), PASSING);
    assert_eq!(entry.meta.keys().collect::<Vec<_>>(), ["zone"]);
}

#[test]
fn an_instance_another_protocol_calls_unhealthy_is_critical() {
    for (key, value) in [("nacos.healthy", "false"), ("eureka.status", "OUT_OF_SERVICE")] {
        let mut instance = InstanceMeta::new("http", "10.0.0.1", 80, "").unwrap();
        instance.parameters.insert(key.into(), value.into());
        assert_eq!(Entry::of("orders", instance).status(), CRITICAL, "{key}={value}");
    }
}
