//! The config loader with good and bad values from each source.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Sources {
    Sources::default().with_env(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

#[test]
fn defaults_differ_by_mode() {
    let dev = Config::from_sources(Mode::Dev, &Sources::default()).unwrap();
    assert_eq!(dev.grpc_addr.to_string(), "127.0.0.1:50051");
    assert_eq!(dev.log_format, LogFormat::Text);
    let serve = Config::from_sources(Mode::Serve, &Sources::default()).unwrap();
    assert_eq!(serve.grpc_addr.to_string(), "0.0.0.0:50051");
    assert_eq!(serve.log_format, LogFormat::Json);
    assert_eq!(serve.shutdown_grace, Duration::from_secs(25));
}

#[test]
fn environment_overrides_defaults() {
    let sources = env(&[
        ("ITSM_GRPC_ADDR", "127.0.0.1:6000"),
        ("ITSM_LOG_FORMAT", "JSON"),
        ("ITSM_REQUEST_TIMEOUT", "1m 30s"),
        ("ITSM_SHUTDOWN_DELAY", "5s"),
        ("ITSM_DATABASE_URL", "postgres://itsm:hunter2@db/itsm"),
        ("ITSM_LOG", "info,itsm_incidents=debug"),
        ("ITSM_MIGRATE_ON_START", "false"),
    ]);
    let config = Config::from_sources(Mode::Dev, &sources).unwrap();
    assert_eq!(config.grpc_addr.port(), 6000);
    assert_eq!(config.log_format, LogFormat::Json);
    assert_eq!(config.request_timeout, Duration::from_secs(90));
    assert_eq!(config.shutdown_delay, Duration::from_secs(5));
    assert_eq!(config.log, "info,itsm_incidents=debug");
    assert!(!config.migrate_on_start);
    let url = config.database_url.unwrap();
    assert_eq!(url.expose(), "postgres://itsm:hunter2@db/itsm");
}

#[test]
fn environment_wins_over_file_and_file_over_defaults() {
    let sources = env(&[("ITSM_GRPC_ADDR", "127.0.0.1:7000")])
        .with_file_text(
            "itsm.toml".into(),
            "grpc_addr = \"127.0.0.1:8000\"\nshutdown_grace = \"10s\"\n",
        )
        .unwrap();
    let config = Config::from_sources(Mode::Serve, &sources).unwrap();
    assert_eq!(config.grpc_addr.port(), 7000);
    assert_eq!(config.shutdown_grace, Duration::from_secs(10));
}

#[test]
fn bad_environment_value_names_the_variable_and_expectation() {
    let err =
        Config::from_sources(Mode::Serve, &env(&[("ITSM_GRPC_ADDR", "not-an-addr")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ITSM_GRPC_ADDR: expected a socket address such as 0.0.0.0:50051, got \"not-an-addr\""
    );
}

#[test]
fn zero_timeouts_and_unknown_formats_are_refused() {
    let err =
        Config::from_sources(Mode::Serve, &env(&[("ITSM_REQUEST_TIMEOUT", "0s")])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ITSM_REQUEST_TIMEOUT: expected a positive duration")
    );
    let err = Config::from_sources(Mode::Serve, &env(&[("ITSM_LOG_FORMAT", "xml")])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ITSM_LOG_FORMAT: expected text or json")
    );
    let err = Config::from_sources(Mode::Serve, &env(&[("ITSM_LOG", "info,[")])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ITSM_LOG: expected a tracing filter")
    );
}

#[test]
fn bad_secret_is_not_echoed() {
    let err = Config::from_sources(
        Mode::Serve,
        &env(&[("ITSM_DATABASE_URL", "mysql://root:hunter2@db")]),
    )
    .unwrap_err();
    let line = err.to_string();
    assert!(
        line.starts_with("ITSM_DATABASE_URL: expected a postgres://"),
        "{line}"
    );
    assert!(!line.contains("hunter2"), "{line}");
    assert!(line.ends_with("got [redacted]"), "{line}");
}

#[test]
fn secrets_do_not_leak_through_debug() {
    let config = Config::from_sources(
        Mode::Serve,
        &env(&[("ITSM_REDIS_URL", "redis://:hunter2@cache:6379")]),
    )
    .unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn bad_file_value_names_file_and_key() {
    let sources = Sources::default()
        .with_file_text("/etc/itsm.toml".into(), "shutdown_grace = 5\n")
        .unwrap();
    let err = Config::from_sources(Mode::Serve, &sources).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shutdown_grace in /etc/itsm.toml: expected a positive duration such as 25s, got \"5\""
    );
}

#[test]
fn unknown_file_key_is_refused() {
    let sources = Sources::default()
        .with_file_text("itsm.toml".into(), "grpc_adr = \"0.0.0.0:1\"\n")
        .unwrap();
    let err = Config::from_sources(Mode::Serve, &sources).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("config file itsm.toml: unknown key \"grpc_adr\"")
    );
}

#[test]
fn malformed_file_is_refused() {
    let err = Sources::default()
        .with_file_text("itsm.toml".into(), "grpc_addr = \n")
        .unwrap_err();
    assert!(
        err.to_string().starts_with("config file itsm.toml: "),
        "{err}"
    );
}

#[test]
fn gateway_settings_parse_and_bad_ones_are_named() {
    let sources = env(&[
        (
            "ITSM_GATEWAY_BACKENDS",
            "incidents=http://a:50051|http://b:50051, cmdb=dns://cmdb-headless.itsm.svc:50051",
        ),
        ("ITSM_GATEWAY_RATE_READ", "50:100"),
        ("ITSM_GATEWAY_RATE_WRITE", "2.5"),
        ("ITSM_GATEWAY_MAX_BODY", "512KiB"),
    ]);
    let gateway = Config::from_sources(Mode::Serve, &sources).unwrap().gateway;
    assert_eq!(gateway.addr.to_string(), "0.0.0.0:8080");
    assert_eq!(gateway.backends.len(), 2);
    assert_eq!(gateway.backends[0].name, "incidents");
    assert_eq!(gateway.backends[0].target, "http://a:50051|http://b:50051");
    assert_eq!(
        gateway.backends[1].target,
        "dns://cmdb-headless.itsm.svc:50051"
    );
    assert_eq!(gateway.rate_read.per_second, 50.0);
    assert_eq!(gateway.rate_read.burst, 100);
    assert_eq!(gateway.rate_write.burst, 3);
    assert_eq!(gateway.max_body, 512 * 1024);

    for (var, value) in [
        ("ITSM_GATEWAY_BACKENDS", "incidents"),
        ("ITSM_GATEWAY_BACKENDS", "incidents=ftp://x:1"),
        (
            "ITSM_GATEWAY_BACKENDS",
            "incidents=http://x:1,incidents=http://y:1",
        ),
        ("ITSM_GATEWAY_BACKENDS", "incidents=dns://x:1|dns://y:1"),
        ("ITSM_GATEWAY_RATE_READ", "0:10"),
        ("ITSM_GATEWAY_RATE_WRITE", "fast"),
        ("ITSM_GATEWAY_MAX_BODY", "4 parsecs"),
        ("ITSM_GATEWAY_BREAKER_FAILURES", "0"),
    ] {
        let error = Config::from_sources(Mode::Serve, &env(&[(var, value)])).unwrap_err();
        assert!(error.to_string().starts_with(var), "{var}={value}: {error}");
    }
}

#[test]
fn redis_prefix_defaults_to_itsm_and_an_empty_one_is_refused() {
    let config = Config::from_sources(Mode::Serve, &env(&[])).unwrap();
    assert_eq!(config.redis_prefix, "itsm:");
    let config =
        Config::from_sources(Mode::Serve, &env(&[("ITSM_REDIS_PREFIX", "staging:")])).unwrap();
    assert_eq!(config.redis_prefix, "staging:");
    let err = Config::from_sources(Mode::Serve, &env(&[("ITSM_REDIS_PREFIX", "")])).unwrap_err();
    assert!(err.to_string().starts_with("ITSM_REDIS_PREFIX"), "{err}");
}

#[test]
fn metrics_addr_defaults_by_mode_can_be_set_or_turned_off() {
    let serve = Config::from_sources(Mode::Serve, &env(&[])).unwrap();
    assert_eq!(serve.metrics_addr, Some("0.0.0.0:9464".parse().unwrap()));
    assert_eq!(serve.metrics_sample_every, Duration::from_secs(15));
    let dev = Config::from_sources(Mode::Dev, &env(&[])).unwrap();
    assert_eq!(dev.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));

    let set = Config::from_sources(
        Mode::Serve,
        &env(&[
            ("ITSM_METRICS_ADDR", "127.0.0.1:0"),
            ("ITSM_METRICS_SAMPLE_EVERY", "250ms"),
        ]),
    )
    .unwrap();
    assert_eq!(set.metrics_addr, Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(set.metrics_sample_every, Duration::from_millis(250));

    let off = Config::from_sources(Mode::Serve, &env(&[("ITSM_METRICS_ADDR", "OFF")])).unwrap();
    assert_eq!(off.metrics_addr, None);
    let from_file = Sources::default()
        .with_file_text("itsm.toml".into(), "metrics_addr = \"off\"\n")
        .unwrap();
    assert_eq!(
        Config::from_sources(Mode::Serve, &from_file)
            .unwrap()
            .metrics_addr,
        None
    );
}

#[test]
fn bad_metrics_settings_name_the_key_and_what_is_expected() {
    let err =
        Config::from_sources(Mode::Serve, &env(&[("ITSM_METRICS_ADDR", "9464")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ITSM_METRICS_ADDR: expected a socket address such as 0.0.0.0:9464, or off, got \"9464\""
    );
    // Only "off" turns metrics off: anything else that is not an address is refused.
    for value in ["no", "false", "disabled", ""] {
        let err =
            Config::from_sources(Mode::Serve, &env(&[("ITSM_METRICS_ADDR", value)])).unwrap_err();
        assert!(
            err.to_string().starts_with("ITSM_METRICS_ADDR"),
            "{value}: {err}"
        );
    }
    let err = Config::from_sources(Mode::Serve, &env(&[("ITSM_METRICS_SAMPLE_EVERY", "0s")]))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ITSM_METRICS_SAMPLE_EVERY: expected a positive duration"),
        "{err}"
    );
    let file = Sources::default()
        .with_file_text("itsm.toml".into(), "metrics_addr = 9464\n")
        .unwrap();
    let err = Config::from_sources(Mode::Serve, &file).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("metrics_addr in itsm.toml: expected a socket address"),
        "{err}"
    );
}
