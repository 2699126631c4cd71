/* lakeforge
description: >
  ML features per customer as of a date (getvariable('as_of'); the build time unless built or exported
  with --as-of). Orders and payments on or after that date are invisible (as_of below), so no leakage.
as_of:
  silver.orders: order_date
  silver.payments: payment_date
checks:
  - {type: unique, column: customer_number}
  - {type: expression, name: frequency_not_negative, expression: frequency >= 0}
*/
with lines as (
    select o.customer_number, o.order_number, o.order_date, l.quantity * l.unit_price as amount
    from silver.orders o
    join silver.order_lines l on l.order_number = o.order_number
), sales as (
    select customer_number,
           max(order_date)              as last_order,
           count(distinct order_number) as frequency,
           sum(amount)                  as monetary
    from lines
    group by customer_number
), delays as (
    -- point-in-time join: each payment against the customer's latest order on or before it (an equality join, the
    -- range as a filter and the latest date per payment: what an ASOF JOIN gives, portable to Daft)
    select customer_number, avg(date_diff('day', order_date, payment_date)) as delay
    from (
        select p.customer_number, p.check_number, p.payment_date, max(o.order_date) as order_date
        from silver.payments p
        join silver.orders o on o.customer_number = p.customer_number
        where p.payment_date >= o.order_date
        group by p.customer_number, p.check_number, p.payment_date
    ) latest
    group by customer_number
)
select
    c.customer_number,
    getvariable('as_of')::date                                     as as_of,
    date_diff('day', s.last_order, getvariable('as_of')::date)    as recency_days,
    coalesce(s.frequency, 0)::bigint                               as frequency,
    coalesce(s.monetary, 0)::decimal(18, 2)                        as monetary,
    c.credit_limit,
    round(d.delay, 1)::double                                      as payment_delay_days
from silver.customers c
left join sales s using (customer_number)
left join delays d using (customer_number)
