//! A router whose routes carry their documentation. A route is added with the utoipa `Path`
//! of its handler (what `#[utoipa::path]` generates as `__path_<handler>`): the route's path
//! and methods are read from it and its operation joins the document, so a route cannot exist
//! without its operation nor answer at a path the document does not give. utoipa-axum's
//! `routes!` does the same, but it cannot name a generic handler (`submit::<S>`), and every
//! handler here is generic over the store.

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter};
use utoipa::openapi::path::{HttpMethod, Operation, Paths};

/// An axum router and the operations of its routes.
pub struct DocumentedRouter<St> {
    router: Router<St>,
    paths: Paths,
}

impl<St: Clone + Send + Sync + 'static> Default for DocumentedRouter<St> {
    fn default() -> Self {
        Self {
            router: Router::new(),
            paths: Paths::new(),
        }
    }
}

impl<St: Clone + Send + Sync + 'static> DocumentedRouter<St> {
    /// Routes `handler` at `P`'s path and methods, documented by `P`'s operation.
    pub fn route<P: utoipa::Path, H: Handler<T, St>, T: 'static>(self, handler: H) -> Self {
        self.add(&P::path(), P::methods(), P::operation(), handler)
    }

    /// Routes `handler` at `path` too, documented by `P`'s operation with `suffix` appended to
    /// its id (operation ids are unique in a document): IO's paths end with a slash, and io
    /// also answers them without.
    pub fn alias<P: utoipa::Path, H: Handler<T, St>, T: 'static>(
        self,
        path: &str,
        suffix: &str,
        handler: H,
    ) -> Self {
        let mut operation = P::operation();
        operation.operation_id = operation.operation_id.map(|id| format!("{id}{suffix}"));
        self.add(path, P::methods(), operation, handler)
    }

    fn add<H: Handler<T, St>, T: 'static>(
        mut self,
        path: &str,
        methods: Vec<HttpMethod>,
        operation: Operation,
        handler: H,
    ) -> Self {
        let route = methods.iter().fold(MethodRouter::new(), |route, method| {
            route.on(method_filter(method), handler.clone())
        });
        self.router = self.router.route(path, route);
        self.paths.add_path_operation(path, methods, operation);
        self
    }

    /// The router and the documented operations.
    pub fn into_parts(self) -> (Router<St>, Paths) {
        (self.router, self.paths)
    }
}

/// axum's filter for an OpenAPI method.
fn method_filter(method: &HttpMethod) -> MethodFilter {
    match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Trace => MethodFilter::TRACE,
    }
}
