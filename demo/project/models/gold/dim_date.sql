/* lakeforge
description: One row per day of every year that has orders.
checks:
  - {type: unique, column: date_key}
*/
with bounds as (
    select date_trunc('year', min(order_date)) as first_day,
           date_trunc('year', max(greatest(order_date, required_date, coalesce(shipped_date, order_date))))
               + interval 1 year - interval 1 day as last_day
    from silver.orders
), days as (
    select unnest(generate_series(first_day, last_day, interval 1 day))::date as day from bounds
)
select
    (year(day) * 10000 + month(day) * 100 + day(day))::integer as date_key,
    day                                                      as date,
    year(day)::integer                                       as year,
    quarter(day)::integer                                    as quarter,
    month(day)::integer                                      as month,
    monthname(day)                                           as month_name,
    isodow(day)::integer                                     as day_of_week,
    isodow(day) in (6, 7)                                    as is_weekend
from days
