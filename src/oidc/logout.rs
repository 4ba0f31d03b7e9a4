//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): where the browser goes
//! after `POST /logout`, from `END_SESSION_URL` or the provider's `end_session_endpoint`.

use crate::config::Config;

/// The logout URL the browser is sent to: `END_SESSION_URL` filled in when set; else the
/// provider's `end_session_endpoint` with `id_token_hint` (when there was a session),
/// `client_id` and `post_logout_redirect_uri`; else `POST_LOGOUT_REDIRECT_URI` itself.
pub fn logout_url(config: &Config, end_session_endpoint: Option<&url::Url>, id_token: Option<&str>) -> String {
    match (&config.end_session_url, end_session_endpoint) {
        (Some(template), _) => end_session_url(template, &config.client_id, &config.post_logout_redirect_uri, id_token),
        (None, Some(endpoint)) => {
            let mut url = endpoint.clone();
            {
                let mut q = url.query_pairs_mut();
                if let Some(id_token) = id_token {
                    q.append_pair("id_token_hint", id_token);
                }
                q.append_pair("client_id", &config.client_id);
                q.append_pair("post_logout_redirect_uri", &config.post_logout_redirect_uri);
            }
            url.to_string()
        }
        (None, None) => config.post_logout_redirect_uri.clone(),
    }
}

/// `END_SESSION_URL` with its placeholders filled in: each query value that is a
/// placeholder gets its value; `{id_token_hint}` without a session drops its parameter.
pub fn end_session_url(template: &url::Url, client_id: &str, post_logout: &str, id_token: Option<&str>) -> String {
    let pairs: Vec<(String, String)> = template.query_pairs().into_owned().collect();
    let mut url = template.clone();
    url.set_query(None);
    if !pairs.is_empty() {
        let mut query = url.query_pairs_mut();
        for (name, value) in &pairs {
            let filled = match value.as_str() {
                "{client_id}" => Some(client_id),
                "{post_logout_redirect_uri}" => Some(post_logout),
                "{id_token_hint}" => id_token,
                other => Some(other),
            };
            if let Some(filled) = filled {
                query.append_pair(name, filled);
            }
        }
    }
    url.into()
}

#[cfg(test)]
mod tests {
    use super::end_session_url;

    #[test]
    fn placeholders_are_filled_and_encoded() {
        let template = url::Url::parse(
            "https://auth.example.com/logout?client_id={client_id}&logout_uri={post_logout_redirect_uri}&hint={id_token_hint}&x=1",
        )
        .unwrap();
        let url = end_session_url(&template, "spa", "https://app.example.com/?a=b&c", Some("h.t.s"));
        assert_eq!(
            url,
            "https://auth.example.com/logout?client_id=spa&logout_uri=https%3A%2F%2Fapp.example.com%2F%3Fa%3Db%26c&hint=h.t.s&x=1"
        );
        let without = end_session_url(&template, "spa", "https://app.example.com/", None);
        assert!(!without.contains("hint="), "{without}");
    }
}
