//! Classes: the seeded hierarchy, custom classes with every attribute type,
//! every bad definition named, keys unique along ancestry, reparenting,
//! type changes over existing values, deletion rules and authorization.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_proto::itsm::common::v1::Date;
use itsm_testkit::{TestDb, backend_tests};
use pb::AttributeType as T;
use tonic::Code;

use crate::support::{AGENT, CMDB_ADMIN, Harness, as_, bad_fields, precondition, start, text};
use crate::{attribute, audit_actions, create_class, get_class, insert_ci, mask};

backend_tests!(
    the_seeded_model_inherits_attributes_and_rules,
    seeding_twice_changes_nothing,
    lists_filter_order_and_page,
    a_custom_class_with_every_attribute_type_reads_back,
    a_retried_create_returns_the_first_class,
    every_bad_definition_is_named_and_nothing_written,
    keys_are_unique_along_ancestry_but_siblings_may_share,
    a_class_cannot_move_into_its_own_subtree,
    an_attribute_with_values_keeps_its_type,
    deletion_needs_a_custom_unused_leaf,
    agents_read_the_model_but_cannot_change_it,
    racing_creates_of_one_id_make_one_class,
);

fn keys(attributes: &[pb::AttributeDefinition]) -> Vec<&str> {
    attributes.iter().map(|a| a.key.as_str()).collect()
}

async fn list(svc: &mut Harness, filter: &str, order_by: &str) -> Vec<String> {
    let request = pb::ListCiClassesRequest {
        page_size: 1000,
        page_token: String::new(),
        filter: filter.into(),
        order_by: order_by.into(),
    };
    svc.client
        .list_ci_classes(as_(CMDB_ADMIN, request))
        .await
        .unwrap()
        .into_inner()
        .ci_classes
        .into_iter()
        .map(|c| c.name)
        .collect()
}

async fn update(
    svc: &mut Harness,
    class: pb::CiClass,
    paths: &[&str],
) -> Result<pb::CiClass, tonic::Status> {
    let etag = class.etag.clone();
    let request = pb::UpdateCiClassRequest {
        ci_class: Some(class),
        update_mask: mask(paths),
        etag,
    };
    svc.client
        .update_ci_class(as_(CMDB_ADMIN, request))
        .await
        .map(tonic::Response::into_inner)
}

async fn delete(svc: &mut Harness, name: &str) -> Result<(), tonic::Status> {
    let request = pb::DeleteCiClassRequest {
        name: name.into(),
        etag: String::new(),
    };
    svc.client
        .delete_ci_class(as_(CMDB_ADMIN, request))
        .await
        .map(|_| ())
}

async fn the_seeded_model_inherits_attributes_and_rules(db: TestDb) {
    let mut svc = start(&db).await;
    let linux = get_class(&mut svc, "classes/linux_server").await.unwrap();
    assert!(linux.system);
    assert!(!linux.is_abstract);
    assert_eq!(linux.parent, "classes/server");
    assert_eq!(
        linux.ancestors,
        [
            "classes/configuration_item",
            "classes/hardware",
            "classes/server"
        ]
    );
    assert_eq!(keys(&linux.attributes), ["kernel_version", "distribution"]);
    // Root first: hardware's, then server's, then its own.
    assert_eq!(
        keys(&linux.effective_attributes),
        [
            "serial_number",
            "manufacturer",
            "model",
            "asset_tag",
            "purchase_date",
            "warranty_end",
            "host_name",
            "dns_domain",
            "ip_address",
            "os_version",
            "cpu_count",
            "memory_gb",
            "virtualized",
            "kernel_version",
            "distribution",
        ]
    );
    let defined_in = |key: &str| {
        linux
            .effective_attributes
            .iter()
            .find(|a| a.key == key)
            .unwrap()
            .defined_in
            .clone()
    };
    assert_eq!(defined_in("serial_number"), "classes/hardware");
    assert_eq!(defined_in("cpu_count"), "classes/server");
    assert_eq!(defined_in("distribution"), "classes/linux_server");
    assert!(linux.identification_rules.is_empty());
    let rules: Vec<Vec<String>> = linux
        .effective_identification_rules
        .iter()
        .map(|r| r.attributes.clone())
        .collect();
    assert_eq!(
        rules,
        [
            vec!["serial_number".to_owned()],
            vec!["host_name".into(), "dns_domain".into()]
        ]
    );
    assert!(
        linux
            .effective_identification_rules
            .iter()
            .all(|r| r.ignore_case)
    );
    assert_eq!(linux.etag, "v1");

    let root = get_class(&mut svc, "classes/configuration_item")
        .await
        .unwrap();
    assert!(root.is_abstract && root.parent.is_empty() && root.ancestors.is_empty());
    let nd = get_class(&mut svc, "classes/network_device").await.unwrap();
    let device_type = nd
        .attributes
        .iter()
        .find(|a| a.key == "device_type")
        .unwrap();
    assert_eq!(device_type.r#type, T::Enum as i32);
    assert_eq!(
        device_type.enum_values,
        ["switch", "router", "firewall", "load_balancer"]
    );
    let location = get_class(&mut svc, "classes/location").await.unwrap();
    assert!(keys(&location.attributes).contains(&"time_zone"));
    let db_class = get_class(&mut svc, "classes/database").await.unwrap();
    assert_eq!(db_class.ancestors.last().unwrap(), "classes/application");

    let missing = get_class(&mut svc, "classes/nope").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let malformed = get_class(&mut svc, "linux_server").await.unwrap_err();
    assert_eq!(bad_fields(&malformed), ["name"]);
}

async fn seeding_twice_changes_nothing(db: TestDb) {
    let mut first = start(&db).await;
    get_class(&mut first, "classes/server").await.unwrap();
    let classes = first.count("ci_classes").await;
    let types = first.count("relationship_types").await;
    assert_eq!(classes, 13);
    assert_eq!(types, 5);
    let generation: i64 =
        sqlx::query_scalar("SELECT version FROM cmdb_singletons WHERE name = 'model_generation'")
            .fetch_one(first.db.pool())
            .await
            .unwrap();
    // A second replica on the same database seeds again: nothing moves.
    let mut second = start(&db).await;
    get_class(&mut second, "classes/server").await.unwrap();
    assert_eq!(second.count("ci_classes").await, classes);
    assert_eq!(second.count("relationship_types").await, types);
    let after: i64 =
        sqlx::query_scalar("SELECT version FROM cmdb_singletons WHERE name = 'model_generation'")
            .fetch_one(second.db.pool())
            .await
            .unwrap();
    assert_eq!(after, generation);
}

async fn lists_filter_order_and_page(db: TestDb) {
    let mut svc = start(&db).await;
    assert_eq!(
        list(&mut svc, r#"parent = "classes/server""#, "").await,
        ["classes/linux_server", "classes/windows_server"]
    );
    assert_eq!(
        list(&mut svc, r#"ancestors:"classes/hardware""#, "").await,
        [
            "classes/linux_server",
            "classes/network_device",
            "classes/server",
            "classes/storage",
            "classes/windows_server",
        ]
    );
    assert_eq!(
        list(&mut svc, "is_abstract = true", "").await,
        ["classes/configuration_item", "classes/hardware"]
    );
    assert!(list(&mut svc, "system = false", "").await.is_empty());
    create_class(&mut svc, "appliance", "hardware", Vec::new()).await;
    assert_eq!(
        list(
            &mut svc,
            r#"system = false AND ancestors:"classes/hardware""#,
            ""
        )
        .await,
        ["classes/appliance"]
    );
    let by_display = list(&mut svc, "", "display_name").await;
    // Display names sort as text: "Application" first, "appliance" after every capital.
    assert_eq!(by_display.first().unwrap(), "classes/application");
    assert_eq!(by_display.last().unwrap(), "classes/appliance");

    // Pages of 4 cover every class once, in name order.
    let everything = list(&mut svc, "", "").await;
    assert_eq!(everything.len(), 14);
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let request = pb::ListCiClassesRequest {
            page_size: 4,
            page_token: token.clone(),
            filter: String::new(),
            order_by: String::new(),
        };
        let page = svc
            .client
            .list_ci_classes(as_(AGENT, request))
            .await
            .unwrap()
            .into_inner();
        assert!(page.ci_classes.len() <= 4);
        seen.extend(page.ci_classes.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, everything);

    for (filter, order_by, field) in [
        ("colour = \"red\"", "", "filter"),
        ("is_abstract = \"yes\"", "", "filter"),
        ("", "create_time", "order_by"),
    ] {
        let request = pb::ListCiClassesRequest {
            page_size: 0,
            page_token: String::new(),
            filter: filter.into(),
            order_by: order_by.into(),
        };
        let status = svc
            .client
            .list_ci_classes(as_(AGENT, request))
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&status), [field]);
    }
}

fn every_type() -> Vec<pb::AttributeDefinition> {
    vec![
        pb::AttributeDefinition {
            max_length: 20,
            required: true,
            ..attribute("rack_unit", T::String)
        },
        pb::AttributeDefinition {
            default_value: Some(support_number(2.0)),
            ..attribute("psu_count", T::Number)
        },
        attribute("hot_swap", T::Boolean),
        pb::AttributeDefinition {
            default_value: Some(pb::AttributeValue {
                value: Some(pb::attribute_value::Value::DateValue(Date {
                    year: 2030,
                    month: 12,
                    day: 31,
                })),
            }),
            ..attribute("end_of_life", T::Date)
        },
        pb::AttributeDefinition {
            enum_values: vec!["gold".into(), "silver".into()],
            default_value: Some(pb::AttributeValue {
                value: Some(pb::attribute_value::Value::EnumValue("silver".into())),
            }),
            ..attribute("support_level", T::Enum)
        },
        pb::AttributeDefinition {
            reference_class: "classes/location".into(),
            ..attribute("site", T::Reference)
        },
    ]
}

fn support_number(n: f64) -> pb::AttributeValue {
    crate::support::number(n)
}

async fn a_custom_class_with_every_attribute_type_reads_back(db: TestDb) {
    let mut svc = start(&db).await;
    let request = pb::CreateCiClassRequest {
        ci_class: Some(pb::CiClass {
            display_name: "  Appliance ".into(),
            description: "A sealed box".into(),
            parent: "classes/hardware".into(),
            attributes: every_type(),
            identification_rules: vec![pb::IdentificationRule {
                attributes: vec!["asset_tag".into(), "rack_unit".into()],
                ignore_case: true,
                match_related_classes: false,
            }],
            system: true, // output only: ignored
            ..pb::CiClass::default()
        }),
        ci_class_id: "appliance".into(),
        request_id: String::new(),
    };
    let created = svc
        .client
        .create_ci_class(as_(CMDB_ADMIN, request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "classes/appliance");
    assert_eq!(created.display_name, "Appliance");
    assert!(!created.system);
    assert_eq!(created.etag, "v1");
    assert_eq!(created.created_by.as_ref().unwrap().subject, "carla");

    let read = get_class(&mut svc, "classes/appliance").await.unwrap();
    assert_eq!(read, created);
    assert_eq!(
        read.attributes.iter().map(|a| a.r#type).collect::<Vec<_>>(),
        [
            T::String,
            T::Number,
            T::Boolean,
            T::Date,
            T::Enum,
            T::Reference
        ]
        .map(|t| t as i32)
    );
    assert_eq!(read.attributes[0].max_length, 20);
    assert!(read.attributes[0].required);
    assert_eq!(read.attributes[5].reference_class, "classes/location");
    assert!(
        read.attributes
            .iter()
            .all(|a| a.defined_in == "classes/appliance")
    );
    assert_eq!(read.effective_attributes.len(), 6 + 6);
    assert_eq!(read.effective_attributes[0].key, "serial_number");
    assert_eq!(
        read.effective_identification_rules,
        read.identification_rules
    );

    assert_eq!(
        svc.event_names("classes/appliance").await,
        ["cmdb.ci_class.created"]
    );
    let event = svc.events().await.pop().unwrap();
    let payload = event.payload.unwrap();
    assert_eq!(
        payload.type_url,
        "type.googleapis.com/itsm.cmdb.v1.CiClassEvent"
    );
    let decoded: pb::CiClassEvent = prost::Message::decode(payload.value.as_slice()).unwrap();
    assert_eq!(decoded.ci_class.unwrap().name, "classes/appliance");
    assert!(decoded.changes.iter().any(|c| c.field == "attributes.site"));
    assert_eq!(
        audit_actions(&mut svc, "classes/appliance").await,
        ["create"]
    );

    // A subclass inherits the attributes and the rules.
    let sub = create_class(&mut svc, "blade_appliance", "appliance", Vec::new()).await;
    assert_eq!(sub.effective_attributes.len(), 12);
    assert_eq!(
        sub.effective_identification_rules,
        read.identification_rules
    );
}

async fn a_retried_create_returns_the_first_class(db: TestDb) {
    let mut svc = start(&db).await;
    let request = pb::CreateCiClassRequest {
        ci_class: Some(pb::CiClass {
            display_name: "Printer".into(),
            parent: "classes/hardware".into(),
            ..pb::CiClass::default()
        }),
        ci_class_id: "printer".into(),
        request_id: "7d4f6b8e-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into(),
    };
    let first = svc
        .client
        .create_ci_class(as_(CMDB_ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    let again = svc
        .client
        .create_ci_class(as_(CMDB_ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(svc.event_names("classes/printer").await.len(), 1);
    // Without the key, the same id is taken.
    let mut other = request;
    other.request_id.clear();
    let status = svc
        .client
        .create_ci_class(as_(CMDB_ADMIN, other))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
}

async fn every_bad_definition_is_named_and_nothing_written(db: TestDb) {
    let mut svc = start(&db).await;
    get_class(&mut svc, "classes/server").await.unwrap();
    let before = svc.count("ci_classes").await;
    let bad = vec![
        attribute("Bad Key", T::String),
        attribute("no_type", T::Unspecified),
        attribute("colour", T::Enum),
        pb::AttributeDefinition {
            enum_values: vec!["a".into(), "a".into()],
            ..attribute("twice", T::Enum)
        },
        attribute("pointer", T::Reference),
        pb::AttributeDefinition {
            reference_class: "classes/nope".into(),
            ..attribute("pointer_2", T::Reference)
        },
        pb::AttributeDefinition {
            max_length: -1,
            ..attribute("short", T::String)
        },
        pb::AttributeDefinition {
            default_value: Some(text("many")),
            ..attribute("count", T::Number)
        },
        attribute("count", T::Number),
        attribute("serial_number", T::String),
        attribute("display_name", T::String),
    ];
    let request = pb::CreateCiClassRequest {
        ci_class: Some(pb::CiClass {
            display_name: " ".into(),
            parent: "classes/nope".into(),
            attributes: bad,
            identification_rules: vec![
                pb::IdentificationRule::default(),
                pb::IdentificationRule {
                    attributes: vec!["display_name".into(), "unknown".into()],
                    ..pb::IdentificationRule::default()
                },
            ],
            ..pb::CiClass::default()
        }),
        ci_class_id: "Bad-Id".into(),
        request_id: String::new(),
    };
    let status = svc
        .client
        .create_ci_class(as_(CMDB_ADMIN, request))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "ci_class_id",
            "ci_class.parent",
            "ci_class.display_name",
            "ci_class.attributes[0].key",
            "ci_class.attributes[1].type",
            "ci_class.attributes[2].enum_values",
            "ci_class.attributes[3].enum_values[1]",
            "ci_class.attributes[4].reference_class",
            "ci_class.attributes[5].reference_class",
            "ci_class.attributes[6].max_length",
            "ci_class.attributes[7].default_value",
            "ci_class.attributes[8].key",
            "ci_class.attributes[10].key",
            "ci_class.identification_rules[0].attributes",
            "ci_class.identification_rules[1].attributes[1]",
        ]
    );
    assert_eq!(svc.count("ci_classes").await, before);
    assert_eq!(svc.count("outbox").await, 0);

    // The parent's serial_number: refused along the ancestry (parent valid this time).
    let request = pb::CreateCiClassRequest {
        ci_class: Some(pb::CiClass {
            display_name: "Blade".into(),
            parent: "classes/server".into(),
            attributes: vec![attribute("serial_number", T::String)],
            ..pb::CiClass::default()
        }),
        ci_class_id: "blade".into(),
        request_id: String::new(),
    };
    let status = svc
        .client
        .create_ci_class(as_(CMDB_ADMIN, request))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["ci_class.attributes[0].key"]);
    assert!(status.message().contains("classes/hardware"), "{status:?}");
}

async fn keys_are_unique_along_ancestry_but_siblings_may_share(db: TestDb) {
    let mut svc = start(&db).await;
    // windows_server declares "edition"; a subclass of its sibling may too.
    let ok = create_class(
        &mut svc,
        "rhel_server",
        "linux_server",
        vec![attribute("edition", T::String)],
    )
    .await;
    assert_eq!(ok.effective_attributes.last().unwrap().key, "edition");
    // But its parent may not take a key a subclass declares.
    let mut server = get_class(&mut svc, "classes/server").await.unwrap();
    server
        .attributes
        .push(attribute("kernel_version", T::String));
    let status = update(&mut svc, server.clone(), &["attributes"])
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["ci_class.attributes[7].key"]);
    assert!(
        status.message().contains("classes/linux_server"),
        "{status:?}"
    );
    // A new key is fine, and subclasses inherit it at once.
    server.attributes.pop();
    server.attributes.push(attribute("rack", T::String));
    let updated = update(&mut svc, server, &["attributes"]).await.unwrap();
    assert_eq!(updated.etag, "v2");
    let rhel = get_class(&mut svc, "classes/rhel_server").await.unwrap();
    assert!(keys(&rhel.effective_attributes).contains(&"rack"));
    assert_eq!(audit_actions(&mut svc, "classes/server").await, ["update"]);
    assert_eq!(
        svc.event_names("classes/server").await,
        ["cmdb.ci_class.updated"]
    );
}

async fn a_class_cannot_move_into_its_own_subtree(db: TestDb) {
    let mut svc = start(&db).await;
    let top = create_class(
        &mut svc,
        "middleware",
        "application",
        vec![attribute("port_range", T::String)],
    )
    .await;
    create_class(&mut svc, "message_broker", "middleware", Vec::new()).await;
    for parent in [
        "classes/message_broker",
        "classes/middleware",
        "classes/nope",
    ] {
        let mut moved = top.clone();
        moved.parent = parent.into();
        let status = update(&mut svc, moved, &["parent"]).await.unwrap_err();
        assert_eq!(bad_fields(&status), ["ci_class.parent"], "{parent}");
    }
    // System classes stay where they are.
    let mut server = get_class(&mut svc, "classes/server").await.unwrap();
    server.parent = "classes/configuration_item".into();
    let status = update(&mut svc, server, &["parent"]).await.unwrap_err();
    assert_eq!(precondition(&status).0, "SYSTEM_CLASS");
    // A custom class moves, its subclasses with it.
    let mut moved = top.clone();
    moved.parent = "classes/configuration_item".into();
    let updated = update(&mut svc, moved, &["parent"]).await.unwrap();
    assert_eq!(updated.ancestors, ["classes/configuration_item"]);
    let broker = get_class(&mut svc, "classes/message_broker").await.unwrap();
    assert_eq!(
        broker.ancestors,
        ["classes/configuration_item", "classes/middleware"]
    );
    // A stale etag is refused.
    let status = update(&mut svc, top, &["description"]).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
}

async fn an_attribute_with_values_keeps_its_type(db: TestDb) {
    let mut svc = start(&db).await;
    let gadget = create_class(
        &mut svc,
        "gadget",
        "hardware",
        vec![
            attribute("slots", T::Number),
            attribute("colour", T::String),
        ],
    )
    .await;
    create_class(&mut svc, "mini_gadget", "gadget", Vec::new()).await;
    // A CI of the subclass has a value for slots; none has colour.
    insert_ci(&svc, "mini_gadget", &[("slots", "4")]).await;

    let mut changed = gadget.clone();
    changed.attributes[0].r#type = T::String as i32;
    let status = update(&mut svc, changed, &["attributes"])
        .await
        .unwrap_err();
    let (kind, subject, _) = precondition(&status);
    assert_eq!(
        (kind.as_str(), subject.as_str()),
        ("ATTRIBUTE_HAS_VALUES", "classes/gadget")
    );

    let mut changed = gadget.clone();
    changed.attributes[1].r#type = T::Number as i32;
    let updated = update(&mut svc, changed, &["attributes"]).await.unwrap();
    assert_eq!(updated.attributes[1].r#type, T::Number as i32);

    // Removing the attribute with values is allowed.
    let mut removed = updated.clone();
    removed.attributes.remove(0);
    let updated = update(&mut svc, removed, &["attributes"]).await.unwrap();
    assert_eq!(keys(&updated.attributes), ["colour"]);

    // The rules of subclasses must stay valid.
    let sub = get_class(&mut svc, "classes/mini_gadget").await.unwrap();
    let mut with_rule = sub.clone();
    with_rule.identification_rules = vec![pb::IdentificationRule {
        attributes: vec!["colour".into()],
        ..pb::IdentificationRule::default()
    }];
    update(&mut svc, with_rule, &["identification_rules"])
        .await
        .unwrap();
    let mut removed = updated;
    removed.attributes.clear();
    let status = update(&mut svc, removed, &["attributes"])
        .await
        .unwrap_err();
    assert_eq!(precondition(&status).0, "IDENTIFICATION_RULE_BROKEN");

    // A class with CIs of its own cannot become abstract.
    let mut sub = get_class(&mut svc, "classes/mini_gadget").await.unwrap();
    sub.is_abstract = true;
    let status = update(&mut svc, sub, &["is_abstract"]).await.unwrap_err();
    assert_eq!(precondition(&status).0, "CLASS_HAS_CIS");

    // Masks are checked.
    let gadget = get_class(&mut svc, "classes/gadget").await.unwrap();
    let status = update(
        &mut svc,
        gadget.clone(),
        &["system", "attributes", "attributes"],
    )
    .await
    .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        ["update_mask.paths[0]", "update_mask.paths[2]"]
    );
    let status = update(&mut svc, gadget, &[]).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["update_mask"]);
}

async fn deletion_needs_a_custom_unused_leaf(db: TestDb) {
    let mut svc = start(&db).await;
    let status = delete(&mut svc, "classes/storage").await.unwrap_err();
    assert_eq!(precondition(&status).0, "SYSTEM_CLASS");

    create_class(&mut svc, "kiosk", "hardware", Vec::new()).await;
    create_class(&mut svc, "touch_kiosk", "kiosk", Vec::new()).await;
    let status = delete(&mut svc, "classes/kiosk").await.unwrap_err();
    assert_eq!(precondition(&status).0, "CLASS_HAS_SUBCLASSES");

    insert_ci(&svc, "touch_kiosk", &[]).await;
    let status = delete(&mut svc, "classes/touch_kiosk").await.unwrap_err();
    assert_eq!(precondition(&status).0, "CLASS_HAS_CIS");

    let pointer = pb::AttributeDefinition {
        reference_class: "classes/kiosk".into(),
        ..attribute("kiosk", T::Reference)
    };
    create_class(&mut svc, "kiosk_app", "application", vec![pointer]).await;
    create_class(&mut svc, "lonely_kiosk", "hardware", Vec::new()).await;
    let lonely = get_class(&mut svc, "classes/lonely_kiosk").await.unwrap();
    let request = pb::DeleteCiClassRequest {
        name: "classes/lonely_kiosk".into(),
        etag: "v7".into(),
    };
    let status = svc
        .client
        .delete_ci_class(as_(CMDB_ADMIN, request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    let request = pb::DeleteCiClassRequest {
        name: "classes/lonely_kiosk".into(),
        etag: lonely.etag,
    };
    svc.client
        .delete_ci_class(as_(CMDB_ADMIN, request))
        .await
        .unwrap();
    assert_eq!(
        get_class(&mut svc, "classes/lonely_kiosk")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        svc.event_names("classes/lonely_kiosk").await,
        ["cmdb.ci_class.created", "cmdb.ci_class.deleted"]
    );
    assert_eq!(
        audit_actions(&mut svc, "classes/lonely_kiosk").await,
        ["create", "delete"]
    );
    assert_eq!(
        delete(&mut svc, "classes/lonely_kiosk")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}

async fn agents_read_the_model_but_cannot_change_it(db: TestDb) {
    let mut svc = start(&db).await;
    let request = pb::CreateCiClassRequest {
        ci_class: Some(pb::CiClass {
            display_name: "Sneaky".into(),
            parent: "classes/hardware".into(),
            ..pb::CiClass::default()
        }),
        ci_class_id: "sneaky".into(),
        request_id: String::new(),
    };
    let status = svc
        .client
        .create_ci_class(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let request = pb::GetCiClassRequest {
        name: "classes/server".into(),
    };
    svc.client.get_ci_class(as_(AGENT, request)).await.unwrap();
    let request = pb::DeleteCiClassRequest {
        name: "classes/server".into(),
        etag: String::new(),
    };
    let status = svc
        .client
        .delete_ci_class(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(svc.count("outbox").await, 0);
}

async fn racing_creates_of_one_id_make_one_class(db: TestDb) {
    let svc = start(&db).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..6 {
        let mut client = svc.client().await;
        calls.spawn(async move {
            let request = pb::CreateCiClassRequest {
                ci_class: Some(pb::CiClass {
                    display_name: format!("Racer {i}"),
                    parent: "classes/hardware".into(),
                    ..pb::CiClass::default()
                }),
                ci_class_id: "racer".into(),
                request_id: String::new(),
            };
            client.create_ci_class(as_(CMDB_ADMIN, request)).await
        });
    }
    let mut created = 0;
    while let Some(result) = calls.join_next().await {
        match result.unwrap() {
            Ok(_) => created += 1,
            Err(status) => assert_eq!(status.code(), Code::AlreadyExists, "{status:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(svc.event_names("classes/racer").await.len(), 1);
}
