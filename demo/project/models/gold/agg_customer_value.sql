/* lakeforge
description: Lifetime value per customer (current version).
checks:
  - {type: unique, column: customer_number}
*/
with sales as (
    select customer_number, count(distinct order_number) as orders, sum(amount) as revenue,
           min(order_date) as first_order, max(order_date) as last_order
    from gold.fact_order_line
    group by customer_number
), paid as (
    select customer_number, sum(amount) as paid from silver.payments group by customer_number
)
select
    c.customer_number,
    c.customer_name,
    c.country,
    coalesce(s.orders, 0)::bigint                           as orders,
    coalesce(s.revenue, 0)::decimal(18, 2)                  as revenue,
    coalesce(p.paid, 0)::decimal(18, 2)                     as paid,
    -- each side typed first: portable (Daft finds no supertype of decimal(38, 2) and an integer literal)
    (coalesce(s.revenue, 0)::decimal(18, 2) - coalesce(p.paid, 0)::decimal(18, 2))::decimal(18, 2) as balance,
    s.first_order,
    s.last_order
from gold.dim_customer c
left join sales s using (customer_number)
left join paid p using (customer_number)
where c.is_current
