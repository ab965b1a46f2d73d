//! A tenant's LINE channel as the connector reads it from its
//! `MessagingConfig::Line`.

use um_config::{MessagingConfig, Secret, TenantConfig};

/// `api.line.me`: everything but content.
pub const API_BASE: &str = "https://api.line.me";
/// `api-data.line.me`: message content (and rich menu images).
pub const DATA_BASE: &str = "https://api-data.line.me";

/// Where the two LINE API hosts are. One configured base URL (a simulator
/// in tests) stands for both, since LINE's paths do not overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub api: String,
    pub data: String,
}

impl Endpoints {
    pub fn new(api_base_url: Option<&str>) -> Self {
        match api_base_url
            .map(|base| base.trim_end_matches('/'))
            .filter(|b| !b.is_empty())
        {
            Some(base) => Self {
                api: base.to_owned(),
                data: base.to_owned(),
            },
            None => Self {
                api: API_BASE.to_owned(),
                data: DATA_BASE.to_owned(),
            },
        }
    }
}

/// Switcher API settings (`spec.messaging.line.switcher`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitcherSettings<'a> {
    pub service_code: &'a str,
    pub destination_id: &'a str,
    pub secret: &'a Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel<'a> {
    pub tenant: &'a str,
    pub channel_secret: &'a Secret,
    /// Long-lived token; without it one is issued from id + secret.
    pub access_token: Option<&'a Secret>,
    pub channel_id: Option<&'a str>,
    pub switcher: Option<SwitcherSettings<'a>>,
    pub endpoints: Endpoints,
}

/// The LINE channel of `tenant`, if its configuration has one.
pub fn channel(tenant: &TenantConfig) -> Option<Channel<'_>> {
    let Some(MessagingConfig::Line(line)) = &tenant.messaging else {
        return None;
    };
    Some(Channel {
        tenant: &tenant.key,
        channel_secret: Some(&line.channel_secret).filter(|s| !s.is_empty())?,
        access_token: line.channel_access_token.as_ref().filter(|s| !s.is_empty()),
        channel_id: line.channel_id.as_deref(),
        switcher: line.switcher.as_ref().map(|switcher| SwitcherSettings {
            service_code: &switcher.service_code,
            destination_id: &switcher.destination_id,
            secret: &switcher.secret,
        }),
        endpoints: Endpoints::new(line.api_base_url.as_deref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_base_url_points_both_hosts_default_is_line() {
        assert_eq!(
            Endpoints::new(None),
            Endpoints {
                api: "https://api.line.me".into(),
                data: "https://api-data.line.me".into()
            }
        );
        let local = Endpoints::new(Some("http://127.0.0.1:4000/"));
        assert_eq!(local.api, "http://127.0.0.1:4000");
        assert_eq!(local.data, "http://127.0.0.1:4000");
    }

    #[test]
    fn reads_the_channel_and_switcher() {
        let mut tenant = super::super::inbound::tests::tenant();
        tenant.messaging = Some(MessagingConfig::Line(um_config::LineConfig {
            channel_id: Some("1650".into()),
            channel_secret: Secret::new("s"),
            channel_access_token: None,
            switcher: Some(um_config::LineSwitcherConfig {
                service_code: "svc".into(),
                destination_id: "dest".into(),
                secret: Secret::new("sw"),
            }),
            api_base_url: None,
        }));
        let channel = channel(&tenant).unwrap();
        assert_eq!(channel.channel_id, Some("1650"));
        assert_eq!(channel.access_token, None);
        let switcher = channel.switcher.unwrap();
        assert_eq!(
            (switcher.service_code, switcher.destination_id),
            ("svc", "dest")
        );
        tenant.messaging = None;
        assert!(super::channel(&tenant).is_none());
    }
}
