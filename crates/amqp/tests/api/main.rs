//! Least privilege on the real test broker (`TEST_AMQP_URL`, `TEST_RABBITMQ_MANAGEMENT_URL`): each
//! role's user (testkit's `TestUser`, with the permissions `pool_amqp::access` gives the role in
//! production) can do its service's work and is refused everything else; the topology is declared by
//! the admin identity only (`pool-amqp declare`), and a refused quorum queue is an error.

mod access;
mod declare;
