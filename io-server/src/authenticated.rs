//! The callers the APIs' authentication layers establish ([`crate::services_api::ServiceCaller`],
//! [`crate::manage_api::InstitutionCaller`], [`crate::citizen_api::Citizen`]) taken by handlers
//! as extractors. The layers stay the guard, so no route of an API is reachable without its
//! credentials; a handler routed where no layer established its caller answers 401 rather than
//! running without one.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::citizen_api::Citizen;
use crate::manage_api::InstitutionCaller;
use crate::problem::Problem;
use crate::services_api::ServiceCaller;

/// The caller of type `T` the authentication layer put in the request, or 401.
fn caller<T: Clone + Send + Sync + 'static>(parts: &Parts) -> Result<T, Problem> {
    parts.extensions.get::<T>().cloned().ok_or_else(|| {
        tracing::error!(
            caller = std::any::type_name::<T>(),
            "a handler needs a caller no authentication layer established"
        );
        Problem::unauthorized("this route is not behind its API's authentication")
    })
}

impl<St: Send + Sync> FromRequestParts<St> for ServiceCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Problem> {
        caller(parts)
    }
}

impl<St: Send + Sync> FromRequestParts<St> for InstitutionCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Problem> {
        caller(parts)
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Citizen {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Problem> {
        caller(parts)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{Request, StatusCode};
    use axum::response::IntoResponse;
    use io_core::FiscalCode;

    use super::*;

    #[tokio::test]
    async fn a_caller_no_layer_established_is_a_401() {
        let (mut parts, ()) = Request::new(()).into_parts();
        let refused = Citizen::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(refused.into_response().status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn the_caller_a_layer_established_is_taken() {
        let (mut parts, ()) = Request::new(()).into_parts();
        let fiscal_code = FiscalCode::parse(io_core::openapi::EXAMPLE_FISCAL_CODE).unwrap();
        parts.extensions.insert(Citizen(fiscal_code.clone()));
        let Citizen(taken) = Citizen::from_request_parts(&mut parts, &()).await.unwrap();
        assert_eq!(taken, fiscal_code);
    }
}
