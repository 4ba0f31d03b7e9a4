//! [`KvBackend`] on the Workers KV binding `SESSIONS`.

use crate::session::kv::{KvBackend, KvError};
use crate::web::client::LocalFuture;

/// The `SESSIONS` namespace.
pub struct WorkerKv(pub worker::kv::KvStore);

fn err(e: worker::kv::KvError) -> KvError {
    KvError(e.to_string())
}

impl KvBackend for WorkerKv {
    fn get<'a>(&'a self, key: &'a str, cache_ttl: Option<u64>) -> LocalFuture<'a, Result<Option<Vec<u8>>, KvError>> {
        Box::pin(async move {
            let mut get = self.0.get(key);
            if let Some(ttl) = cache_ttl {
                get = get.cache_ttl(ttl.max(60));
            }
            get.bytes().await.map_err(err)
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: u64) -> LocalFuture<'a, Result<(), KvError>> {
        Box::pin(async move {
            self.0.put_bytes(key, &value).map_err(err)?.expiration_ttl(ttl.max(60)).execute().await.map_err(err)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> LocalFuture<'a, Result<(), KvError>> {
        Box::pin(async move { self.0.delete(key).await.map_err(err) })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> LocalFuture<'a, Result<Vec<String>, KvError>> {
        Box::pin(async move {
            let listed = self.0.list().prefix(prefix.to_string()).limit(1000).execute().await.map_err(err)?;
            Ok(listed.keys.into_iter().map(|k| k.name).collect())
        })
    }
}
