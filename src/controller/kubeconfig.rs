//! A tenant's kubeconfig for a remote cluster, reduced to what quayside
//! allows: the current context's https server, inline CA data, and an
//! inline token or client certificate and key. Everything that would make
//! the controller read its own files, run a program or send its traffic
//! elsewhere (`exec`, `auth-provider`, `tokenFile`, any file path,
//! `proxy-url`, `insecure-skip-tls-verify`, impersonation) is refused, so a
//! kubeconfig cannot carry the controller's own credentials anywhere.

use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

/// Why a kubeconfig is refused; the message names the field to remove.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    #[error("it names no current context (set current-context)")]
    NoContext,
    #[error("its current context {0:?} is not defined")]
    UnknownContext(String),
    #[error("its cluster {0:?} is not defined")]
    UnknownCluster(String),
    #[error("its user {0:?} is not defined")]
    UnknownUser(String),
    #[error("the server must be an https:// URL")]
    NotHttps,
    #[error(
        "`{0}` is not allowed: quayside accepts only server, certificate-authority-data, and token or client-certificate-data with client-key-data, all inline"
    )]
    Field(&'static str),
    #[error("it has no credentials: give a token, or client-certificate-data and client-key-data")]
    NoCredentials,
}

/// The allowed part of `kc`, as a kubeconfig of one context, or the first
/// field that is not allowed.
pub fn allowlisted(kc: &Kubeconfig) -> Result<Kubeconfig, Refused> {
    let context_name = kc.current_context.clone().ok_or(Refused::NoContext)?;
    let context = kc
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| Refused::UnknownContext(context_name.clone()))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| Refused::UnknownCluster(context.cluster.clone()))?;
    let user_name = context.user.clone().unwrap_or_default();
    let user = kc
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info.clone())
        .ok_or_else(|| Refused::UnknownUser(user_name.clone()))?;
    let cluster = allowed_cluster(&cluster)?;
    let user = allowed_user(&user)?;
    Ok(Kubeconfig {
        clusters: vec![NamedCluster {
            name: "target".into(),
            cluster: Some(cluster),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "target".into(),
            auth_info: Some(user),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: "target".into(),
            context: Some(Context {
                cluster: "target".into(),
                user: Some("target".into()),
                namespace: context.namespace,
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some("target".into()),
        ..Default::default()
    })
}

fn allowed_cluster(c: &Cluster) -> Result<Cluster, Refused> {
    refuse_set(&[
        ("certificate-authority", c.certificate_authority.is_some()),
        ("proxy-url", c.proxy_url.is_some()),
        (
            "insecure-skip-tls-verify",
            c.insecure_skip_tls_verify == Some(true),
        ),
        ("an unknown cluster field", !c.other.is_empty()),
    ])?;
    let server = c.server.clone().unwrap_or_default();
    let https = url::Url::parse(&server).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
    if !https {
        return Err(Refused::NotHttps);
    }
    Ok(Cluster {
        server: Some(server),
        certificate_authority_data: c.certificate_authority_data.clone(),
        tls_server_name: c.tls_server_name.clone(),
        ..Default::default()
    })
}

fn allowed_user(u: &AuthInfo) -> Result<AuthInfo, Refused> {
    refuse_set(&[
        ("exec", u.exec.is_some()),
        ("auth-provider", u.auth_provider.is_some()),
        ("tokenFile", u.token_file.is_some()),
        ("client-certificate", u.client_certificate.is_some()),
        ("client-key", u.client_key.is_some()),
        ("username", u.username.is_some()),
        ("password", u.password.is_some()),
        ("as", u.impersonate.is_some()),
        ("as-uid", u.impersonate_uid.is_some()),
        ("as-groups", u.impersonate_groups.is_some()),
        ("as-user-extra", u.impersonate_user_extra.is_some()),
        ("an unknown user field", !u.other.is_empty()),
    ])?;
    let certificate = u.client_certificate_data.is_some() && u.client_key_data.is_some();
    if u.token.is_none() && !certificate {
        return Err(Refused::NoCredentials);
    }
    Ok(AuthInfo {
        token: u.token.clone(),
        client_certificate_data: u.client_certificate_data.clone(),
        client_key_data: u.client_key_data.clone(),
        ..Default::default()
    })
}

fn refuse_set(fields: &[(&'static str, bool)]) -> Result<(), Refused> {
    match fields.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(Refused::Field(name)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(cluster: &str, user: &str) -> Kubeconfig {
        let yaml = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             contexts:\n- name: c\n  context: {{cluster: k, user: u, namespace: ns}}\n\
             clusters:\n- name: k\n  cluster:\n{cluster}\n\
             users:\n- name: u\n  user:\n{user}\n"
        );
        Kubeconfig::from_yaml(&yaml).expect("test kubeconfig parses")
    }

    fn refusal(kc: &Kubeconfig) -> Option<Refused> {
        allowlisted(kc).err()
    }

    const SERVER: &str = "    server: https://10.0.0.1:6443\n    certificate-authority-data: Q0E=";
    const TOKEN: &str = "    token: abc";

    #[test]
    fn inline_server_ca_and_token_pass_and_nothing_else_is_kept() {
        let kc = kubeconfig(SERVER, TOKEN);
        let got = allowlisted(&kc).unwrap();
        let cluster = got.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
        assert!(
            got.auth_infos[0]
                .auth_info
                .as_ref()
                .unwrap()
                .token
                .is_some()
        );
        let client = kubeconfig(
            SERVER,
            "    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ",
        );
        assert!(allowlisted(&client).is_ok());
    }

    #[test]
    fn every_way_to_reach_the_controllers_own_files_or_programs_is_refused() {
        let cases = [
            (
                SERVER,
                "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token",
                "tokenFile",
            ),
            (
                SERVER,
                "    exec: {command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}",
                "exec",
            ),
            (
                SERVER,
                "    auth-provider: {name: oidc, config: {}}",
                "auth-provider",
            ),
            (
                SERVER,
                "    client-certificate: /etc/cert\n    client-key: /etc/key",
                "client-certificate",
            ),
            (SERVER, "    token: abc\n    as: system:admin", "as"),
            (SERVER, "    username: a\n    password: b", "username"),
            (
                "    server: https://x\n    certificate-authority: /etc/ssl/ca.pem",
                TOKEN,
                "certificate-authority",
            ),
            (
                "    server: https://x\n    proxy-url: http://attacker",
                TOKEN,
                "proxy-url",
            ),
            (
                "    server: https://x\n    insecure-skip-tls-verify: true",
                TOKEN,
                "insecure-skip-tls-verify",
            ),
        ];
        for (cluster, user, field) in cases {
            assert_eq!(
                refusal(&kubeconfig(cluster, user)),
                Some(Refused::Field(field)),
                "{field}"
            );
        }
    }

    #[test]
    fn plain_http_missing_credentials_and_dangling_names_are_refused() {
        let http = kubeconfig("    server: http://10.0.0.1", TOKEN);
        assert_eq!(refusal(&http), Some(Refused::NotHttps));
        let file = kubeconfig("    server: file:///etc/passwd", TOKEN);
        assert_eq!(refusal(&file), Some(Refused::NotHttps));
        let none = kubeconfig(SERVER, "    {}");
        assert_eq!(refusal(&none), Some(Refused::NoCredentials));
        let mut kc = kubeconfig(SERVER, TOKEN);
        kc.current_context = Some("other".into());
        assert_eq!(refusal(&kc), Some(Refused::UnknownContext("other".into())));
        kc.current_context = None;
        assert_eq!(refusal(&kc), Some(Refused::NoContext));
        let msg = Refused::Field("exec").to_string();
        assert!(msg.contains("`exec` is not allowed"), "{msg}");
    }
}
