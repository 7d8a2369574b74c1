//! A spawned task that lives no longer than its owner: dropping the handle aborts the task, so
//! a heartbeat or a progress ticker dies with the job that started it, even when that job is
//! cancelled (its future dropped) or panics.

use tokio::task::JoinHandle;

pub struct AbortOnDrop<T>(pub JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::AbortOnDrop;

    #[tokio::test]
    async fn dropping_the_handle_stops_the_task() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let guard = AbortOnDrop(tokio::spawn(async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        }));
        drop(guard);
        // The task held the only sender: once it is aborted, the channel closes.
        assert!(rx.recv().await.is_none());
    }
}
