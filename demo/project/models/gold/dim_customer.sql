/* lakeforge
materialized: scd2
unique_key: customer_number
surrogate_key: customer_key
initial_valid_from: 1900-01-01
description: Customers with history; a changed customer gets a new version (customer_key).
checks:
  - {type: unique, column: customer_key}
  - {type: sql, name: one_current_version, sql: "select customer_number from {this} where is_current group by 1 having count(*) > 1"}
*/
select
    c.customer_number,
    c.customer_name,
    c.contact_name,
    c.city,
    c.state,
    c.country,
    c.credit_limit,
    c.sales_rep_employee_number,
    e.employee_name as sales_rep_name
from silver.customers c
left join silver.employees e on e.employee_number = c.sales_rep_employee_number
