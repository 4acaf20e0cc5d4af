//! Byte counting of request and response bodies as they stream (the
//! `bytes_in`/`bytes_out` metrics), without holding them.

/// Which byte counter a [`CountingBody`] feeds.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// Request bodies received.
    In,
    /// Response bodies sent.
    Out,
}

/// A body that counts its data bytes as they stream through, keeping the
/// inner body's size hint and end-of-stream state.
pub struct CountingBody {
    inner: crate::shared::BoxBody,
    direction: Direction,
}

impl CountingBody {
    /// Wraps `inner`.
    pub fn new(inner: crate::shared::BoxBody, direction: Direction) -> Self {
        Self { inner, direction }
    }
}

impl http_body::Body for CountingBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            match self.direction {
                Direction::In => crate::metrics::global().bytes_in(data.len()),
                Direction::Out => crate::metrics::global().bytes_out(data.len()),
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
