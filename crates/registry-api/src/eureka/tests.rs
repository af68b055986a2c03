//! The Eureka facade's unit tests: its XML and its hash code.

use serde_json::json;

use super::encoding::to_xml;
use super::instance::hashcode;

#[test]
fn xml_follows_eurekas_conventions() {
    let document = json!({"applications": {"versions__delta": "3", "apps__hashcode": "UP_1_",
        "application": [{"name": "DEMO", "instance": [{"instanceId": "a<b", "port": {"$": 8080, "@enabled": "true"},
        "metadata": {"zone": "eu", "9bad": "x"}}]}]}});
    let xml = String::from_utf8(to_xml(&document)).unwrap();
    // Elements in key order (clients read them by name), text escaped, `9bad` left out.
    assert_eq!(
        xml,
        "<applications><application><instance><instanceId>a&lt;b</instanceId>\
         <metadata><zone>eu</zone></metadata><port enabled=\"true\">8080</port></instance>\
         <name>DEMO</name></application><apps__hashcode>UP_1_</apps__hashcode>\
         <versions__delta>3</versions__delta></applications>"
    );
}

#[test]
fn the_hashcode_counts_statuses_in_order() {
    let up = json!({"status": "UP"});
    let down = json!({"status": "DOWN"});
    assert_eq!(hashcode(&[&up, &down, &up]), "DOWN_1_UP_2_");
    assert_eq!(hashcode(&[]), "");
}
